"""What each export contains: the list or report as tables with Chinese headers, personal numbers masked
unless the exporter's role needs them, and every export written to the office log.

Masking: ID numbers and phone numbers leave the system whole only for auditors, whose checks and
call-backs (抽查、回访) need them; everyone else gets them masked, as on screen.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy.orm import Session

from . import audit_review, caselist, dashboard, elderlist, monthly_report, office_log, visit_rates
from .elders import ROLE_LABELS
from .listing import MAX_EXPORT_ROWS, Column, Table
from .models import Role, User
from .rules.idnumber import mask_id_number
from .rules.phone import mask_phone

UNMASKED_ROLES = frozenset({Role.AUDITOR})
LEVEL_LABELS = {
    "intact": "能力完好",
    "mild": "轻度失能",
    "moderate": "中度失能",
    "severe": "重度失能",
    "complete": "完全失能",
}
SEX_LABELS = {"male": "男", "female": "女"}
ELDER_STATUS_LABELS = {"active": "在册", "deceased": "已故", "moved_away": "迁出"}


def unmasked(actor: User) -> bool:
    return actor.role in UNMASKED_ROLES


def id_number(actor: User, number: str | None) -> str:
    if not number:
        return ""
    return number if unmasked(actor) else mask_id_number(number)


def phone(actor: User, number: str | None) -> str:
    if not number:
        return ""
    return number if unmasked(actor) else mask_phone(number)


def _truncated(total: int, rows: int) -> list[str]:
    if total > rows:
        return [f"符合条件的共 {total} 条，超过导出上限，仅导出前 {rows} 条；请缩小筛选范围后分批导出。"]
    return []


def _log(session: Session, actor: User, what: str, filters: dict, rows: int, channel: str) -> None:
    office_log.exported(
        session,
        actor,
        what,
        {"filters": filters, "rows": rows, "masked": not unmasked(actor)},
        channel=channel,
    )


def _masking_note(actor: User) -> str:
    if unmasked(actor):
        return f"本表含完整身份证号和电话，导出人：{actor.display_name}（{ROLE_LABELS[actor.role]}），请妥善保管。"
    return "身份证号、电话已脱敏。"


# --------------------------------------------------------------------------------------------------


def cases_table(session: Session, actor: User, flt: caselist.CaseFilter, *, channel: str = "web") -> Table:
    rows, total = caselist.iter_cases(session, actor, flt, MAX_EXPORT_ROWS)
    table = Table(
        "案件列表",
        [
            Column("id", "案件号", "number"),
            Column("process", "业务"),
            Column("version", "版本", "number"),
            Column("title", "标题"),
            Column("status", "状态"),
            Column("step", "当前环节"),
            Column("area", "辖区"),
            Column("elder", "老人"),
            Column("id_number", "身份证号"),
            Column("started_at", "发起时间", "datetime"),
            Column("ended_at", "办结时间", "datetime"),
            Column("overdue", "是否逾期"),
            Column("next_due_at", "最早到期", "datetime"),
        ],
        [
            {
                "id": r.id,
                "process": r.process_name,
                "version": r.version,
                "title": r.title,
                "status": r.status_label,
                "step": r.current_step,
                "area": r.area_name or r.area_code or "",
                "elder": r.elder_name or "",
                "id_number": id_number(actor, r.elder_id_number),
                "started_at": r.started_at,
                "ended_at": r.ended_at,
                "overdue": "是" if r.overdue else "否",
                "next_due_at": r.next_due_at,
            }
            for r in rows
        ],
        total,
        notes=_truncated(total, len(rows)) + [_masking_note(actor)],
    )
    _log(session, actor, "案件列表", flt.as_args(page=None), len(rows), channel)
    return table


def elders_table(session: Session, actor: User, flt: elderlist.ElderFilter, *, channel: str = "web") -> Table:
    from .elders import FIELD_LABELS

    rows, total = elderlist.iter_elders(session, actor, flt, MAX_EXPORT_ROWS)
    table = Table(
        "老人档案",
        [
            Column("id", "档案号", "number"),
            Column("name", "姓名"),
            Column("id_number", "身份证号"),
            Column("sex", "性别"),
            Column("age", "年龄", "number"),
            Column("phone", "联系电话"),
            Column("area", "居住村(社区)"),
            Column("address", "详细地址"),
            Column("flags", "类别"),
            Column("level", "失能等级（有效评估）"),
            Column("valid_until", "评估有效期至", "date"),
            Column("status", "状态"),
        ],
        [
            {
                "id": r.id,
                "name": r.name,
                "id_number": id_number(actor, r.id_number),
                "sex": SEX_LABELS.get(r.sex, r.sex),
                "age": r.age,
                "phone": phone(actor, r.phone),
                "area": r.area_path,
                "address": r.address,
                "flags": "、".join(FIELD_LABELS[f] for f in r.flags),
                "level": LEVEL_LABELS.get(r.disability_level or "", "无有效评估"),
                "valid_until": r.assessment_valid_until,
                "status": ELDER_STATUS_LABELS.get(r.status, r.status),
            }
            for r in rows
        ],
        total,
        notes=_truncated(total, len(rows)) + [_masking_note(actor)],
    )
    _log(session, actor, "老人档案列表", flt.as_args(page=None), len(rows), channel)
    return table


def dashboard_tables(
    session: Session, actor: User, board: dashboard.Dashboard, *, channel: str = "web"
) -> list[Table]:
    """The dashboard's figures, one sheet per block (counts only: nothing personal)."""
    month = board.month
    open_rows = []
    for p in board.open_cases:
        open_rows.append({"process": p.name, "step": "（在办案件）", "count": p.running})
        open_rows += [{"process": p.name, "step": s.name, "count": s.open_tasks} for s in p.steps]
    overdue_rows = [
        {
            "township": o.township_name,
            "role": ROLE_LABELS.get(Role(o.role), o.role) if o.role else "（未分角色）",
            "count": o.count,
        }
        for o in board.overdue
    ]
    visit_rows = []
    for kind, rates in (("月探访率", board.month_visits), ("分散供养特困周探访率", board.week_visits)):
        period = f"{rates.start.isoformat()} 至 {rates.end.isoformat()}"
        for part in [*rates.parts, rates.total]:
            visit_rows.append(
                {
                    "kind": kind,
                    "period": period,
                    "area": part.area_name,
                    "due": part.due,
                    "visited": part.visited,
                    "rate": part.rate,
                }
            )
    tables = [
        Table(
            "在办案件",
            [Column("process", "业务"), Column("step", "环节"), Column("count", "数量", "number")],
            open_rows,
            len(open_rows),
            notes=[f"{board.area_name}，截至 {board.today.isoformat()}"],
        ),
        Table(
            "逾期任务",
            [Column("township", "乡镇"), Column("role", "角色"), Column("count", "逾期任务", "number")],
            overdue_rows,
            len(overdue_rows),
        ),
        Table(
            "探访率",
            [
                Column("kind", "指标"),
                Column("period", "期间"),
                Column("area", "区划"),
                Column("due", "应探访", "number"),
                Column("visited", "已探访", "number"),
                Column("rate", "探访率", "rate"),
            ],
            visit_rows,
            len(visit_rows),
        ),
        Table(
            "轮候",
            [
                Column("tier", "轮候类别"),
                Column("waiting", "轮候人数", "number"),
                Column("average", "平均已等待（天）", "number"),
                Column("longest", "最长已等待（天）", "number"),
            ],
            [
                {
                    "tier": t.label,
                    "waiting": t.waiting,
                    "average": t.average_wait_days,
                    "longest": t.longest_wait_days,
                }
                for t in board.waitlist
            ],
            len(board.waitlist),
        ),
        Table(
            "六助服务",
            [
                Column("label", "类别/服务机构"),
                Column("count", "次数", "number"),
                Column("elders", "对象（人）", "number"),
                Column("amount", "金额（元）", "amount"),
            ],
            [
                {"label": f.label, "count": f.count, "elders": f.elders, "amount": f.amount}
                for f in [*board.services.by_type, *board.services.by_provider]
            ],
            len(board.services.by_type) + len(board.services.by_provider),
            notes=[f"{month.year}年{month.month}月"],
        ),
        Table(
            "能力评估",
            [Column("level", "等级"), Column("count", "老年人（人）", "number")],
            [
                {"level": LEVEL_LABELS.get(k, "无有效评估"), "count": v}
                for k, v in board.assessments.by_level.items()
            ]
            + [{"level": f"{board.assessments.expiring_days}天内到期", "count": board.assessments.expiring}],
            len(board.assessments.by_level) + 1,
        ),
    ]
    _log(session, actor, "统计看板", {"area": board.area, "month": month.strftime("%Y-%m")}, 0, channel)
    return tables


def monthly_report_tables(
    session: Session, actor: User, area: str | None, month: date, *, channel: str = "web"
) -> tuple[monthly_report.MonthlyReport, list[Table]]:
    report = monthly_report.build(session, actor, area, month)
    _log(session, actor, "月度报表", {"area": report.area, "month": month.strftime("%Y-%m")}, 0, channel)
    return report, report.tables


def unvisited_table(
    session: Session,
    actor: User,
    area: str,
    first: date,
    last: date,
    *,
    home_support_only: bool,
    channel: str = "web",
) -> Table:
    rows, total = visit_rates.unvisited(
        session, area, first, last, home_support_only=home_support_only, limit=MAX_EXPORT_ROWS
    )
    paths = elderlist.area_paths(session, [r.area_code for r in rows])
    table = Table(
        "未探访名单",
        [
            Column("name", "姓名"),
            Column("id_number", "身份证号"),
            Column("phone", "联系电话"),
            Column("area", "村(社区)"),
            Column("last", "上次探访", "date"),
        ],
        [
            {
                "name": r.name,
                "id_number": id_number(actor, r.id_number),
                "phone": phone(actor, r.phone),
                "area": paths.get(r.area_code, r.area_code),
                "last": r.last_visited_on,
            }
            for r in rows
        ],
        total,
        notes=[
            f"{first.isoformat()} 至 {last.isoformat()} 未探访",
            *_truncated(total, len(rows)),
            _masking_note(actor),
        ],
    )
    _log(
        session,
        actor,
        "未探访名单",
        {"area": area, "from": first, "to": last, "weekly": home_support_only},
        len(rows),
        channel,
    )
    return table


def events_table(
    session: Session, actor: User, flt: audit_review.EventFilter, *, channel: str = "web"
) -> Table:
    page = audit_review.list_events(session, actor, flt, limit=MAX_EXPORT_ROWS)
    table = Table(
        "审计记录",
        [
            Column("at", "时间", "datetime"),
            Column("case", "案件号", "number"),
            Column("seq", "序号", "number"),
            Column("kind", "事件"),
            Column("task", "环节"),
            Column("actor", "操作人"),
            Column("process", "业务"),
            Column("area", "辖区"),
            Column("elder", "老人"),
            Column("id_number", "身份证号"),
            Column("comment", "意见"),
        ],
        [
            {
                "at": e.at,
                "case": e.case_id,
                "seq": e.seq,
                "kind": e.kind_label,
                "task": e.task_name or "",
                "actor": e.actor_name or "系统",
                "process": e.process_name,
                "area": e.area_name or e.area_code or "",
                "elder": e.elder_name or "",
                "id_number": id_number(actor, e.elder_id_number),
                "comment": e.comment or "",
            }
            for e in page.rows
        ],
        page.total,
        notes=_truncated(page.total, len(page.rows)) + [_masking_note(actor)],
    )
    _log(session, actor, "审计记录", flt.as_args(page=None), len(page.rows), channel)
    return table


def office_log_table(
    session: Session, actor: User, flt: audit_review.LogFilter, *, channel: str = "web"
) -> Table:
    from .office_log import KIND_LABELS

    page = audit_review.list_office_log(session, actor, flt, limit=MAX_EXPORT_ROWS)
    table = Table(
        "登录与越权日志",
        [
            Column("at", "时间", "datetime"),
            Column("kind", "类型"),
            Column("username", "用户名"),
            Column("role", "角色"),
            Column("channel", "渠道"),
            Column("address", "来源地址"),
            Column("target", "访问对象"),
            Column("message", "说明"),
        ],
        [
            {
                "at": r.at,
                "kind": KIND_LABELS[r.kind],
                "username": r.username,
                "role": ROLE_LABELS.get(Role(r.role), r.role) if r.role else "",
                "channel": r.channel,
                "address": r.address or "",
                "target": r.target,
                "message": r.message,
            }
            for r in page.rows
        ],
        page.total,
        notes=_truncated(page.total, len(page.rows)),
    )
    _log(session, actor, "登录与越权日志", flt.as_args(page=None), len(page.rows), channel)
    return table


def sample_table(session: Session, actor: User, sample_id: int, *, channel: str = "web") -> Table:
    view = audit_review.get_sample(session, actor, sample_id)
    s = view.sample
    table = Table(
        f"抽查样本{s.id}",
        [
            Column("position", "序号", "number"),
            Column("case", "案件号", "number"),
            Column("title", "案件"),
            Column("area", "辖区"),
            Column("elder", "老人"),
            Column("id_number", "身份证号"),
            Column("ended_at", "办结时间", "datetime"),
            Column("outcome", "核查结果"),
            Column("note", "说明"),
            Column("reviewed_by", "核查人"),
            Column("reviewed_at", "核查时间", "datetime"),
        ],
        [
            {
                "position": i.position,
                "case": i.case_id,
                "title": i.title,
                "area": i.area_name or "",
                "elder": i.elder_name or "",
                "id_number": id_number(actor, i.elder_id_number),
                "ended_at": i.ended_at,
                "outcome": audit_review.OUTCOME_LABELS[i.outcome],
                "note": i.note,
                "reviewed_by": i.reviewed_by or "",
                "reviewed_at": i.reviewed_at,
            }
            for i in view.items
        ],
        len(view.items),
        notes=[
            f"{view.process_name} {s.month.year}年{s.month.month}月办结案件 {s.population} 件，随机抽取 {len(view.items)} 件"
            f"（随机种子 {s.seed}）",
            _masking_note(actor),
        ],
    )
    _log(session, actor, f"抽查样本 #{s.id}", {"sample": s.id}, len(view.items), channel)
    return table


def figure_table(
    session: Session, actor: User, title: str, columns, rows, total, filters, *, channel="web"
) -> Table:
    """A list behind a dashboard figure (waitlist, services, adaptations, facilities), rows made by the caller
    with `id_number`/`phone` already passed through this module's masking."""
    table = Table(title, columns, rows, total, notes=_truncated(total, len(rows)) + [_masking_note(actor)])
    _log(session, actor, title, filters, len(rows), channel)
    return table
