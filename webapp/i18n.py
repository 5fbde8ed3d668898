"""Languages: Chinese by default, English selectable per person (saved on the user) or per browser session.

Texts are written in Chinese in templates and views as `_("中文")`; `messages_en.py` maps each to English.
A test checks that every text marked in the code has its English entry, so the catalogue cannot rot.
"""

from __future__ import annotations

from datetime import datetime

from flask import g, session
from flask_login import current_user
from markupsafe import Markup, escape

from workflows import audit, clock
from workflows.elders import FIELD_LABELS
from workflows.models.elders import SUPPORT_FLAGS

from .messages_en import MESSAGES as EN

LANGUAGES = {"zh": "中文", "en": "English"}
DEFAULT = "zh"


def get_locale() -> str:
    """The language of this request: the session's choice, then the user's, then Chinese."""
    if "locale" in g:
        return g.locale
    chosen = session.get("lang")
    if chosen not in LANGUAGES and getattr(current_user, "is_authenticated", False):
        chosen = getattr(current_user, "locale", None)
    g.locale = chosen if chosen in LANGUAGES else DEFAULT
    return g.locale


def gettext(text: str, **values) -> str:
    """Translate a Chinese text to the request's language, then fill in `{name}` placeholders."""
    if get_locale() == "en":
        text = EN.get(text, text)
    return text.format(**values) if values else text


_ = gettext


def local_time(moment: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A stored UTC time as Beijing time."""
    if moment is None:
        return ""
    return moment.astimezone(clock.LOCAL).strftime(fmt)


def local_date(moment: datetime | None) -> str:
    return local_time(moment, "%Y-%m-%d")


def label(kind: str, value) -> str:
    """The display name of a coded value (role, status, due state, support flag...), translated."""
    if value is None:
        return ""
    value = str(getattr(value, "value", value))
    text = LABELS.get(kind, {}).get(value, value)
    return gettext(text)


def nl2br(text: str | None) -> Markup:
    return Markup("<br>").join(escape(text or "").split("\n"))


# Labels of coded values, in Chinese (translated through the catalogue like every other text).
LABELS: dict[str, dict[str, str]] = {
    "role": {
        "village_assistant": "养老协理员",
        "caseworker": "乡镇经办人",
        "assessor": "评估员",
        "approver": "县民政局审批人",
        "provider": "服务机构",
        "facility_admin": "养老机构管理员",
        "auditor": "监督审计",
        "process_owner": "流程管理员",
        "admin": "系统管理员",
    },
    "case_status": {"running": "办理中", "completed": "已办结", "cancelled": "已终止", "error": "出错"},
    "task_status": {"ready": "待办", "completed": "已完成", "cancelled": "已撤销"},
    "due": {"overdue": "已逾期", "due_soon": "即将到期", "on_time": "未到期", "no_due": "无期限"},
    "scope": {"mine": "我的任务", "group": "待认领", "all": "全部任务"},
    "sort": {"due": "按到期时间", "newest": "最新在前", "oldest": "最早在前", "elder": "按老人姓名"},
    "event": {kind.value: text for kind, text in audit.EVENT_LABELS.items()},
    "relation": {"parent": "上级案件", "child": "下级案件", "same_elder": "同一老人"},
    "notice": {
        "approval": "审批通知书",
        "refusal": "不予批准通知书",
        "admission_offer": "入住通知",
        "public_list": "公示名单",
    },
    "archive": {
        "queued": "排队中",
        "running": "进行中",
        "done": "已完成",
        "failed": "失败",
        "stale": "已中断",
    },
    "sex": {"male": "男", "female": "女"},
    "elder_status": {"active": "在册", "deceased": "已故", "moved_away": "迁出"},
    "level": {
        "intact": "能力完好",
        "mild": "轻度失能",
        "moderate": "中度失能",
        "severe": "重度失能",
        "complete": "完全失能",
    },
    "flag": {flag: FIELD_LABELS[flag] for flag in SUPPORT_FLAGS},  # as the register names them
    "match": {"eligible": "符合条件", "needs_review": "需人工核实"},
    "period": {"year": "年", "month": "月", "once": "次", "day": "天"},
}
