"""The county's working-day calendar: the holidays and make-up workdays (调休) of each year, as the State
Council's notice sets them, entered by the county's administrator (on the page, from a file, or on the
command line). An entered year takes precedence over the calendar library for that whole year.

Deadlines counted in working days depend on it. When a year is entered or corrected, every open task
whose due date was counted across that year is counted again, and where it moves, the case's trail says
so; the processes recount their own deadlines (an admission offer's arrival deadline, say) through the
registry (`Process.calendar_change`). From 1 December on, a missing next year is warned about.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from time import monotonic

from sqlalchemy import delete, event, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from . import admin_log, audit, cases, clock, deadlines, registry
from .errors import PermissionDenied, ValidationFailed
from .models import Case, CaseStatus, EventKind, HumanTask, TaskStatus, User
from .models.office import CalendarDay, CalendarYear, DayKind
from .rules import workdays
from .users import require_admin

FIRST_YEAR, LAST_YEAR = 2000, 2100
# From this day of December on, a missing next year is warned about.
WARN_FROM = (12, 1)
NAME_MAX = 32

_HOLIDAY_NAMES = {
    "New Year's Day": "元旦",
    "Spring Festival": "春节",
    "Tomb-sweeping Day": "清明节",
    "Labour Day": "劳动节",
    "Dragon Boat Festival": "端午节",
    "National Day": "国庆节",
    "Mid-autumn Festival": "中秋节",
    "Anti-Fascist 70th Day": "中国人民抗日战争暨世界反法西斯战争胜利70周年纪念日",
}
KIND_LABELS = {DayKind.HOLIDAY: "休", DayKind.WORKDAY: "班"}
_KIND_WORDS = {
    "休": DayKind.HOLIDAY,
    "放假": DayKind.HOLIDAY,
    "假": DayKind.HOLIDAY,
    "holiday": DayKind.HOLIDAY,
    "班": DayKind.WORKDAY,
    "上班": DayKind.WORKDAY,
    "调休上班": DayKind.WORKDAY,
    "workday": DayKind.WORKDAY,
}


@dataclass(frozen=True)
class Day:
    day: date
    kind: DayKind
    name: str = ""


# --------------------------------------------------------------------------------------------------
# Reading and writing the text form: one line per holiday period or make-up workday
#   2027-02-06~2027-02-12 休 春节
#   2027-02-14 班 春节


_LINE = re.compile(
    r"^(?P<start>\d{4}-\d{1,2}-\d{1,2})\s*(?:(?:~|～|至|到|\.\.)\s*(?P<end>\d{4}-\d{1,2}-\d{1,2}))?"
    r"[\s,，、]+(?P<kind>\S+?)(?:[\s,，、]+(?P<name>.*?))?[\s,，]*$"
)


def parse_days(text: str, year: int) -> list[Day]:
    """The days of a year from the text form; ValidationFailed names every line that is wrong."""
    if not isinstance(text, str):
        raise ValidationFailed("内容应为文本", field_errors={"days": "内容应为文本"})
    problems: list[str] = []
    found: list[Day] = []
    lines = text.replace("\r\n", "\n").split("\n")
    if len(lines) > 500:
        raise ValidationFailed("内容过长：最多500行", field_errors={"days": "内容过长：最多500行"})
    for number, raw in enumerate(lines, start=1):
        line = raw.split("#", 1)[0].strip().lstrip("\ufeff")
        if not line:
            continue
        match = _LINE.match(line)
        if match is None:
            problems.append(f"第{number}行格式应为“日期[~日期] 休/班 名称”：{raw.strip()[:40]}")
            continue
        try:
            start = _date(match["start"])
            end = _date(match["end"]) if match["end"] else start
        except ValueError:
            problems.append(f"第{number}行日期无效：{raw.strip()[:40]}")
            continue
        kind = _KIND_WORDS.get(match["kind"].lower())
        if kind is None:
            problems.append(f"第{number}行类型“{match['kind'][:10]}”应为“休”或“班”")
            continue
        if end < start or (end - start).days > 30:
            problems.append(f"第{number}行日期范围无效（结束早于开始，或超过31天）")
            continue
        name = (match["name"] or "").strip()
        day = start
        while day <= end:
            found.append(Day(day, kind, name))
            day += timedelta(days=1)
    if problems:
        raise ValidationFailed("；".join(problems[:20]), field_errors={"days": "；".join(problems[:20])})
    check_days(found, year)
    return found


def _date(text: str) -> date:
    y, m, d = (int(part) for part in text.split("-"))
    return date(y, m, d)


def check_days(days: Iterable[Day], year: int) -> None:
    """Refuse a year that cannot be right: days of another year, a day both off and worked, a make-up
    workday that is not a weekend day, no holiday at all."""
    problems: list[str] = []
    seen: dict[date, Day] = {}
    for item in days:
        if item.day.year != year:
            problems.append(f"{item.day.isoformat()} 不在 {year} 年内")
        if len(item.name) > NAME_MAX:
            problems.append(f"{item.day.isoformat()} 的名称过长（最多{NAME_MAX}个字）")
        earlier = seen.get(item.day)
        if earlier is not None and earlier.kind != item.kind:
            problems.append(f"{item.day.isoformat()} 既是放假日又是调休上班日")
        seen[item.day] = item
        if item.kind == DayKind.WORKDAY and item.day.weekday() < 5:
            problems.append(
                f"{item.day.isoformat()} 是工作日（星期{'一二三四五'[item.day.weekday()]}），不需要登记为调休上班"
            )
    if not any(d.kind == DayKind.HOLIDAY for d in seen.values()):
        problems.append(f"{year} 年没有任何放假日：请按国务院办公厅通知填写")
    if problems:
        message = "；".join(dict.fromkeys(problems))
        raise ValidationFailed(message[:1000], field_errors={"days": message[:1000]})


def format_days(days: Iterable[Day]) -> str:
    """The text form of a year's days: consecutive holidays of one name as one period."""
    lines: list[str] = []
    ordered = sorted(days, key=lambda d: d.day)
    index = 0
    while index < len(ordered):
        first = last = ordered[index]
        while (
            first.kind == DayKind.HOLIDAY
            and index + 1 < len(ordered)
            and ordered[index + 1].kind == DayKind.HOLIDAY
            and ordered[index + 1].name == first.name
            and ordered[index + 1].day == last.day + timedelta(days=1)
        ):
            index += 1
            last = ordered[index]
        span = first.day.isoformat() + (f"~{last.day.isoformat()}" if last.day != first.day else "")
        lines.append(f"{span} {KIND_LABELS[first.kind]} {first.name}".rstrip())
        index += 1
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------------
# The calendar in force


def _entered_rows(session: Session) -> dict[int, list[Day]]:
    years: dict[int, list[Day]] = {year: [] for year in session.scalars(select(CalendarYear.year))}
    for row in session.scalars(select(CalendarDay).order_by(CalendarDay.day)):
        years.setdefault(row.year, []).append(Day(row.day, row.kind, row.name))
    return years


def _as_years(entered: Mapping[int, list[Day]]) -> dict[int, workdays.Year]:
    return {
        year: workdays.Year(
            holidays=frozenset(d.day for d in days if d.kind == DayKind.HOLIDAY),
            workdays=frozenset(d.day for d in days if d.kind == DayKind.WORKDAY),
        )
        for year, days in entered.items()
    }


_seen_revisions: tuple | None = None


def refresh(session: Session) -> int:
    """Load the county's entered years into this process when they changed (cheap when they did not).

    The web app asks now and then, the worker every round; the process that entered a year applies it
    as soon as it is committed."""
    global _seen_revisions
    revisions = tuple(
        session.execute(select(CalendarYear.year, CalendarYear.revision).order_by(CalendarYear.year))
    )
    if revisions != _seen_revisions:
        workdays.use_entered_years(_as_years(_entered_rows(session)))
        _seen_revisions = revisions
    return 0


_next_look = 0.0


def refresh_now_and_then(session: Session, seconds: float = 60.0) -> None:
    """`refresh`, at most once a minute (web processes ask on every request; entries are yearly)."""
    global _next_look
    moment = monotonic()
    if moment >= _next_look:
        _next_look = moment + seconds
        refresh(session)


_APPLY_AFTER_COMMIT = "eldercare.calendar_years"


@event.listens_for(Session, "after_commit")
def _apply_entered(session: Session) -> None:
    years = session.info.pop(_APPLY_AFTER_COMMIT, None)
    if years is not None:
        global _seen_revisions
        workdays.use_entered_years(years)
        _seen_revisions = None  # the next refresh reads the revisions again


@event.listens_for(Session, "after_rollback")
def _forget_entered(session: Session) -> None:
    session.info.pop(_APPLY_AFTER_COMMIT, None)


@dataclass
class YearInfo:
    year: int
    source: str  # "county", "library" or "missing"
    holidays: int = 0
    workdays: int = 0
    notice: str = ""
    entered_at: datetime | None = None
    entered_by: str | None = None

    @property
    def source_label(self) -> str:
        return {"county": "本县录入", "library": "程序库内置", "missing": "缺失"}[self.source]


def year_days(session: Session, year: int) -> tuple[str, list[Day]]:
    """A year's days off and worked weekend days, and where they come from."""
    entered = _entered_rows(session)
    if year in entered:
        return "county", entered[year]
    if workdays.library_covers(year):
        return "library", _library_days(year)
    return "missing", []


def _library_days(year: int) -> list[Day]:
    found = []
    day = date(year, 1, 1)
    with workdays.entered_years({}):  # the library alone
        while day.year == year:
            working = workdays.is_workday(day)
            if not working and day.weekday() < 5:
                name = workdays.holiday_name(day) or ""
                found.append(Day(day, DayKind.HOLIDAY, _HOLIDAY_NAMES.get(name, name)))
            elif working and day.weekday() >= 5:
                found.append(Day(day, DayKind.WORKDAY, ""))
            day += timedelta(days=1)
    return found


def overview(session: Session, today: date | None = None) -> list[YearInfo]:
    """Every year from last year to next year, and every entered year, with where its days come from."""
    today = today or clock.today()
    rows = {r.year: r for r in session.scalars(select(CalendarYear))}
    names = dict(session.execute(select(User.id, User.display_name)).all()) if rows else {}
    counts = _entered_rows(session)
    years = sorted({today.year - 1, today.year, today.year + 1, *rows})
    out = []
    for year in years:
        row = rows.get(year)
        if row is not None:
            days = counts.get(year, [])
            out.append(
                YearInfo(
                    year,
                    "county",
                    sum(1 for d in days if d.kind == DayKind.HOLIDAY),
                    sum(1 for d in days if d.kind == DayKind.WORKDAY),
                    row.notice,
                    row.updated_at,
                    names.get(row.entered_by),
                )
            )
        elif workdays.library_covers(year):
            days = _library_days(year)
            out.append(
                YearInfo(
                    year,
                    "library",
                    sum(1 for d in days if d.kind == DayKind.HOLIDAY),
                    sum(1 for d in days if d.kind == DayKind.WORKDAY),
                )
            )
        else:
            out.append(YearInfo(year, "missing"))
    return out


def warnings(session: Session, today: date | None = None) -> list[str]:
    """What the calendar lacks: the current year always; from 1 December on, the next year too."""
    today = today or clock.today()
    entered = set(session.scalars(select(CalendarYear.year)))
    found = []
    for year in (today.year, today.year + 1):
        if year > today.year and (today.month, today.day) < WARN_FROM:
            continue
        if year not in entered and not workdays.library_covers(year):
            found.append(
                f"工作日历缺少 {year} 年的放假和调休安排：跨入该年的办理期限暂按周一至周五计算，"
                f"请系统管理员按国务院办公厅通知录入"
            )
    return found


# --------------------------------------------------------------------------------------------------
# Entering a year, and what moves with it


@dataclass
class CalendarChange:
    """A year entered or corrected: the calendar before and after, for recounting deadlines."""

    years: frozenset[int]
    before: Mapping[int, workdays.Year]
    after: Mapping[int, workdays.Year]
    actor: User | None

    def touches(self, start: datetime, end: datetime | None) -> bool:
        """Whether a count from `start` to `end` crossed a changed year."""
        first = clock.local_date(start).year
        last = clock.local_date(end).year if end is not None else first
        return any(first <= year <= last for year in self.years)

    def due(self, start: datetime, workdays_n: int) -> tuple[datetime | None, datetime | None]:
        """The due date of `workdays_n` working days from `start`, before and after the change."""
        with workdays.entered_years(self.before):
            old = deadlines.due_at(start, workdays_n=workdays_n)
        with workdays.entered_years(self.after):
            new = deadlines.due_at(start, workdays_n=workdays_n)
        return old, new

    def note(self) -> str:
        years = "、".join(str(y) for y in sorted(self.years))
        return f"{years}年放假和调休安排录入后重新计算"


@dataclass
class Moved:
    case_id: int
    task_id: str | None
    what: str  # the task's name, or what else moved
    old: datetime | None
    new: datetime | None


@dataclass
class Entered:
    year: int
    created: bool
    days: list[Day]
    moved: list[Moved] = field(default_factory=list)


def enter_year(
    session: Session, actor: User | None, year, days: Iterable[Day] | str, *, notice: str = ""
) -> Entered:
    """Enter or correct a year's holidays and make-up workdays; recount the deadlines that depend on it."""
    require_admin(actor)
    if actor is not None and len(actor.area_code) > 6:
        raise PermissionDenied("工作日历由县级系统管理员维护")
    if isinstance(year, bool) or not isinstance(year, int) or not FIRST_YEAR <= year <= LAST_YEAR:
        raise ValidationFailed("年份无效", field_errors={"year": f"年份应为{FIRST_YEAR}–{LAST_YEAR}"})
    notice = notice.strip() if isinstance(notice, str) else ""
    if len(notice) > 200:
        raise ValidationFailed("通知文号过长", field_errors={"notice": "最多200个字"})
    days = parse_days(days, year) if isinstance(days, str) else list(days)
    check_days(days, year)
    unique = {d.day: d for d in days}
    now = clock.now()
    row = _lock_year(session, year)
    created = row is None
    if created:
        row = CalendarYear(
            year=year, notice=notice, entered_at=now, entered_by=None, updated_at=now, revision=1
        )
        try:
            with (
                session.begin_nested()
            ):  # two administrators entering the same new year: one waits, then updates
                session.add(row)
                session.flush()
        except IntegrityError:
            created = False
            row = _lock_year(session, year)
    before_rows = _entered_rows(session)
    previous = before_rows.get(year, []) if not created else []
    if not created:
        row.revision = (row.revision or 1) + 1
    row.notice = notice
    row.entered_by = actor.id if actor is not None else None
    row.updated_at = now
    session.execute(delete(CalendarDay).where(CalendarDay.year == year))
    session.add_all(CalendarDay(day=d.day, year=year, kind=d.kind, name=d.name) for d in unique.values())
    session.flush()
    before = _as_years({y: v for y, v in before_rows.items() if y != year or not created})
    after = _as_years({**before_rows, year: list(unique.values())})
    change = CalendarChange(frozenset({year}), before, after, actor)
    moved = _recount_tasks(session, change)
    for process in registry.current():
        if process.calendar_change is not None:
            moved += process.calendar_change(session, change)
    session.info[_APPLY_AFTER_COMMIT] = after
    holidays = sum(1 for d in unique.values() if d.kind == DayKind.HOLIDAY)
    worked = len(unique) - holidays
    admin_log.record(
        session,
        actor,
        "calendar",
        year,
        "entered" if created else "corrected",
        f"{'录入' if created else '更正'} {year} 年放假和调休安排：放假 {holidays} 天，调休上班 {worked} 天"
        + (f"（{notice}）" if notice else "")
        + f"；{len(moved)} 项期限随之调整",
        detail={
            "before": format_days(previous) if previous else None,
            "after": format_days(unique.values()),
            "moved": [{"case": m.case_id, "task": m.task_id, "what": m.what} for m in moved],
        },
    )
    return Entered(year, created, sorted(unique.values(), key=lambda d: d.day), moved)


def _lock_year(session: Session, year: int) -> CalendarYear | None:
    query = select(CalendarYear).where(CalendarYear.year == year)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    return session.execute(query.execution_options(populate_existing=True)).scalar_one_or_none()


def _recount_tasks(session: Session, change: CalendarChange) -> list[Moved]:
    """Open tasks whose due date was counted in working days across a changed year, counted again."""
    first = min(change.years)
    since = datetime.combine(date(first, 1, 1), time(0, 0), clock.LOCAL)
    candidates = session.scalars(
        select(HumanTask)
        .join(Case, Case.id == HumanTask.case_id)
        .where(
            HumanTask.status == TaskStatus.READY,
            HumanTask.due_at.is_not(None),
            HumanTask.due_at >= since,
            Case.status == CaseStatus.RUNNING,
        )
        .order_by(HumanTask.case_id, HumanTask.created_at)
    ).all()
    moved = []
    for task in candidates:
        if not change.touches(task.created_at, task.due_at):
            continue
        case = session.get(Case, task.case_id)
        props = cases.runtime_of(session, case).steps.get(task.task_spec, {}).get("properties") or {}
        n = props.get("dueWorkdays")
        if n in (None, ""):
            continue
        old, new = change.due(task.created_at, int(n))
        # A due date set otherwise (a date the process chose) is not the calendar's to move.
        if old != task.due_at or new == task.due_at:
            continue
        task.due_at = new
        audit.record(
            session,
            case,
            EventKind.DEADLINE_CHANGED,
            actor=change.actor,
            task_spec=task.task_spec,
            task_name=task.name,
            comment=f"{change.note()}：办理期限由 {clock.local_text(old, '%Y-%m-%d')} 调整为 {clock.local_text(new, '%Y-%m-%d')}",
            detail={
                "task_id": task.id,
                "old": old.isoformat(),
                "new": new.isoformat(),
                "years": sorted(change.years),
            },
        )
        moved.append(Moved(case.id, task.id, task.name, old, new))
    session.flush()
    return moved
