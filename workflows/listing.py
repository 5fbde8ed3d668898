"""What every supervision list shares: reading query-string filters with Chinese errors, pages, and the
plain table (columns and rows) that a page, the API and an Excel export all show."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import String
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from .clock import LOCAL
from .errors import PermissionDenied, ValidationFailed
from .models import User
from .models.base import is_row_id

PER_PAGE = 50
MAX_PER_PAGE = 200
MAX_PAGE = 100_000
# Exports carry every matching row up to this many; more is a sign the filter is too wide.
MAX_EXPORT_ROWS = 50_000
AREA_CODE = re.compile(r"^(\d{6}|\d{9}|\d{12})$")


class Args:
    """Reads a query string (a Flask MultiDict or a plain dict), collecting a Chinese error per field."""

    def __init__(self, args):
        self.args = args
        self.errors: dict[str, str] = {}

    def text(self, name: str, limit: int = 50) -> str | None:
        value = self.args.get(name)
        if value is None:
            return None
        value = str(value).strip()
        return value[:limit] or None

    def values(self, name: str) -> list[str]:
        getlist = getattr(self.args, "getlist", None)
        raw = getlist(name) if getlist else self.args.get(name)
        if raw is None:
            return []
        if isinstance(raw, str):
            raw = [raw]
        out = []
        for item in raw:
            out += [part.strip() for part in str(item).split(",") if part.strip()]
        return out

    def choice(self, name: str, enum_cls, default=None):
        value = self.text(name)
        if value is None:
            return default
        try:
            return enum_cls(value)
        except ValueError:
            self.errors[name] = "不是允许的选项"
            return default

    def number(self, name: str, default: int | None, lower: int, upper: int) -> int | None:
        value = self.text(name, 20)
        if value is None:
            return default
        if not value.isdigit() or not lower <= int(value) <= upper:
            self.errors[name] = f"应为 {lower} 到 {upper} 之间的整数"
            return default
        return int(value)

    def row_id(self, name: str) -> int | None:
        value = self.text(name, 20)
        if value is None:
            return None
        if not value.isdigit() or not is_row_id(int(value)):
            self.errors[name] = "应为编号（正整数）"
            return None
        return int(value)

    def day(self, name: str) -> date | None:
        value = self.text(name, 20)
        if value is None:
            return None
        try:
            return date.fromisoformat(value)
        except ValueError:
            self.errors[name] = "日期格式应为 YYYY-MM-DD"
            return None

    def month(self, name: str, default: date | None = None) -> date | None:
        value = self.text(name, 20)
        if value is None:
            return default
        match = re.fullmatch(r"(\d{4})-(\d{1,2})", value)
        if not match or not 1 <= int(match.group(2)) <= 12 or not 2000 <= int(match.group(1)) <= 2100:
            self.errors[name] = "月份格式应为 YYYY-MM"
            return default
        return date(int(match.group(1)), int(match.group(2)), 1)

    def flag(self, name: str) -> bool:
        value = (self.text(name) or "").lower()
        if value in ("", "0", "false", "no", "off"):
            return False
        if value in ("1", "true", "yes", "on"):
            return True
        self.errors[name] = "应为 1 或 0"
        return False

    def area(self, name: str = "area") -> str | None:
        value = self.text(name, 20)
        if value is None:
            return None
        if not AREA_CODE.match(value):
            self.errors[name] = "行政区划代码应为6、9或12位数字"
            return None
        return value

    def check(self, message: str = "查询条件有误") -> None:
        if self.errors:
            raise ValidationFailed(explain(message, self.errors), field_errors=dict(self.errors))


def query_args(values: dict[str, Any]) -> dict[str, Any]:
    """A filter's fields as query-string arguments for links: unset ones (None, False, empty) left out,
    dates in ISO form, enums by their value, lists item by item."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if value is None or value is False or (isinstance(value, str | list | tuple) and not value):
            continue
        out[key] = [_query_arg(v) for v in value] if isinstance(value, list | tuple) else _query_arg(value)
    return out


def _query_arg(value: Any) -> str:
    return value.isoformat() if isinstance(value, date) else str(getattr(value, "value", value))


def explain(message: str, errors: dict[str, str]) -> str:
    """A refusal that names each parameter and what is wrong with it (a page shows only the message)."""
    return f"{message}：" + "；".join(f"{name} {problem}" for name, problem in errors.items())


def check_order(args: Args, first: str, last: str, a: date | None, b: date | None) -> None:
    if a is not None and b is not None and a > b:
        args.errors[last] = "结束日期不能早于开始日期"


def require_within(actor: User, area: str | None) -> None:
    """Refuse a filter on an area outside the actor's own (a township worker asking for another's rows)."""
    if area is not None and not area.startswith(actor.area_code) and not actor.area_code.startswith(area):
        raise PermissionDenied("无权查看其他辖区的数据")


def narrowest(actor: User, area: str | None) -> str:
    """The area a list covers: the one asked for when inside the actor's, else the actor's own."""
    if area is None or actor.area_code.startswith(area):
        return actor.area_code
    require_within(actor, area)
    return area


class unindexed(FunctionElement):  # noqa: N801  (a SQL function's name)
    """A column that SQLite must test row by row rather than reach through its index; other databases
    see the column itself (PostgreSQL's planner weighs an index range by its statistics already, and an
    expression in its place would hide them)."""

    inherit_cache = True
    type = String()


@compiles(unindexed)
def _unindexed_default(element, compiler, **kw):
    return compiler.process(list(element.clauses)[0], **kw)


@compiles(unindexed, "sqlite")
def _unindexed_sqlite(element, compiler, **kw):
    # SQLite guesses an index range to hold a quarter of the rows, so for a county (nearly every row) it
    # would follow the area index row by row; as an expression the area is tested on rows found otherwise.
    column = compiler.process(list(element.clauses)[0], **kw)
    return f"coalesce({column}, '')"


def in_scope(column, scope: str):
    """A code column inside `scope`, for lists and counts that also filter or sort by other indexed columns:
    a county reads nearly every row, so its area is tested as rows come (see `unindexed`)."""
    from .elders import in_area

    if len(scope) <= 6:
        return in_area(unindexed(column), scope)
    return in_area(column, scope)


def day_start(day: date) -> datetime:
    """The first moment of a day in Beijing (times are stored in UTC)."""
    return datetime.combine(day, time(0, 0), LOCAL)


def day_after(day: date) -> datetime:
    return day_start(day + timedelta(days=1))


@dataclass
class Column:
    key: str
    label: str
    kind: str = "text"  # text / number / rate / date / datetime / amount


@dataclass
class Table:
    """Rows under Chinese column headings: one page on screen, or every row in an export."""

    title: str
    columns: list[Column]
    rows: list[dict[str, Any]]
    total: int
    page: int = 1
    per_page: int = PER_PAGE
    notes: list[str] = field(default_factory=list)

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def pages(total: int, per_page: int) -> int:
    return max(1, -(-total // per_page))
