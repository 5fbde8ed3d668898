"""WeasyPrint with our own templates, fonts and a fetcher that reaches nothing outside the app's assets.

Fonts: one system CJK font, installed from Debian (`fonts-wqy-microhei`), found through fontconfig, never a
web font (web fonts split by `unicode-range` come out as wrong glyphs while `pdffonts` still says
"embedded"). Measured on the project's machines for one short Chinese page: WenQuanYi Micro Hei 35-56 ms
and 16 KB, Noto Sans CJK 79-236 ms and 222 KB (its CFF collection subsets to fourteen times the size); see
`eldercare bench pdf`. A missing font stops rendering with a clear message instead of printing boxes.

Resources: templates name images as `res:<name>` (bytes the renderer hands over: thumbnails, the seal)
or `asset:<file>` (files under casefiles/assets). Anything else (http, file, paths out of the folder)
is refused and stops the rendering.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from workflows.clock import LOCAL
from workflows.errors import DomainError

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
ASSETS = HERE / "assets"
FONT_FAMILY = "WenQuanYi Micro Hei"
FONT_PACKAGE = "fonts-wqy-microhei"


class PdfUnavailable(DomainError):
    """The machine lacks what rendering needs (the CJK font, WeasyPrint's libraries)."""

    status = 503


class ResourceRefused(Exception):
    """A template reached for something outside the app's own assets."""


@cache
def _font_installed() -> bool:
    try:
        found = subprocess.run(
            ["fc-list", f":family={FONT_FAMILY}", "family"], capture_output=True, text=True, timeout=20
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return FONT_FAMILY in found.stdout


def require_font() -> None:
    """Refuse to render without the CJK font (WeasyPrint would fall back to whatever it finds, or boxes)."""
    if not _font_installed():
        raise PdfUnavailable(
            f"服务器未安装中文字体（Debian 软件包 {FONT_PACKAGE}），无法生成 PDF，请联系系统管理员运行 scripts/setup.sh"
        )


def _weasyprint():
    try:
        import weasyprint
    except OSError as exc:  # pango and friends missing: WeasyPrint fails on import
        raise PdfUnavailable(f"服务器缺少 PDF 排版所需的系统库（pango），无法生成 PDF：{exc}") from exc
    return weasyprint


def fetcher(resources: dict[str, bytes] | None = None):
    """A URL fetcher that serves `res:` bytes given by the renderer and `asset:` files, and nothing else."""
    from weasyprint.urls import FatalURLFetchingError, URLFetcher, URLFetcherResponse

    resources = dict(resources or {})
    root = ASSETS.resolve()

    class Refusal(FatalURLFetchingError, ResourceRefused):
        pass

    class AssetFetcher(URLFetcher):
        def __init__(self):
            super().__init__(allowed_protocols=set(), fail_on_errors=True)

        def fetch(self, url, headers=None):
            if url.startswith("res:") and url[4:] in resources:
                return URLFetcherResponse(url, resources[url[4:]], {}, 200)
            if url.startswith("asset:"):
                path = (root / url[6:]).resolve()
                if root in path.parents and path.is_file():
                    return URLFetcherResponse(url, path.read_bytes(), {}, 200)
            raise Refusal(f"不允许读取应用资源以外的地址：{url[:200]}")

    return AssetFetcher()


@cache
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(cn_time=cn_time, cn_date=cn_date, css_string=css_string)
    return env


def css_string(text) -> Markup:
    """A quoted CSS string for a <style> block: quotes, backslashes, line breaks and '<' escaped."""
    escaped = "".join(f"\\{ord(ch):x} " if ch in '"\\<>\n\r' or ord(ch) < 32 else ch for ch in str(text))
    return Markup(f'"{escaped}"')


def cn_time(moment: datetime | None) -> str:
    return moment.astimezone(LOCAL).strftime("%Y-%m-%d %H:%M") if moment else ""


def cn_date(moment: datetime | None) -> str:
    if moment is None:
        return ""
    local = moment.astimezone(LOCAL)
    return f"{local.year}年{local.month}月{local.day}日"


@cache
def _stylesheet(name: str):
    return _weasyprint().CSS(filename=str(TEMPLATES / name))


@dataclass
class Rendered:
    pdf: bytes
    pages: int


def layout(template: str, context: dict, *, stylesheet: str, resources: dict[str, bytes] | None = None):
    """Lay a template of ours out into pages (a WeasyPrint document, not yet written)."""
    require_font()
    weasyprint = _weasyprint()
    html = environment().get_template(template).render(**context, font_family=FONT_FAMILY)
    return weasyprint.HTML(string=html, base_url="res:/", url_fetcher=fetcher(resources)).render(
        stylesheets=[_stylesheet(stylesheet)]
    )


def write(documents) -> bytes:
    """One PDF of the pages of laid-out documents, in order."""
    first, *_ = documents
    return first.copy([page for document in documents for page in document.pages]).write_pdf()


def render(
    template: str, context: dict, *, stylesheet: str, resources: dict[str, bytes] | None = None
) -> Rendered:
    """Render a template of ours to PDF; the same inputs give the same bytes."""
    document = layout(template, context, stylesheet=stylesheet, resources=resources)
    return Rendered(document.write_pdf(), len(document.pages))
