"""The studio's texts (webapp/static/studio/src): every Chinese text in its code has an English entry, as the
app's own catalogue test asks of the templates, and neither dictionary names a text twice."""

from __future__ import annotations

import re
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "webapp" / "static" / "studio" / "src"
CJK = re.compile(r"[\u4e00-\u9fff]")
LITERAL = re.compile(r"'((?:[^'\\\n]|\\.)*)'")
KEY = re.compile(r"^\s*'((?:[^'\\]|\\.)*)':", re.M)


def _dictionary(name: str) -> list[str]:
    source = (SRC / "i18n.js").read_text(encoding="utf-8")
    start = source.index(f"export const {name} = {{")
    end = source.index("\n};", start)
    return KEY.findall(source[start:end])


def _without_comments(code: str) -> str:
    code = re.sub(r"/\*.*?\*/", "", code, flags=re.S)
    return re.sub(r"(?m)^\s*//.*$|\s//\s.*$", "", code)


def test_every_chinese_text_of_the_studio_has_its_english():
    english = set(_dictionary("EN"))
    missing = []
    for path in sorted(SRC.rglob("*.js")):
        if path.name == "i18n.js":
            continue
        for text in LITERAL.findall(_without_comments(path.read_text(encoding="utf-8"))):
            if CJK.search(text) and text not in english:
                missing.append(f"{path.name}: {text}")
    assert missing == []


def test_the_dictionaries_name_each_text_once():
    for name in ("ZH", "EN"):
        keys = _dictionary(name)
        assert len(keys) > 50
        assert sorted({k for k in keys if keys.count(k) > 1}) == [], name
