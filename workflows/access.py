"""Who may see and do what: roles by lane, areas by code prefix. Every use case asks here."""

import re
from functools import lru_cache

from .errors import PermissionDenied
from .models import HumanTask, Role, User

# Roles that read everything inside their area without working tasks.
_READ_ALL = {Role.AUDITOR, Role.ADMIN, Role.PROCESS_OWNER, Role.APPROVER}

# Chinese lane names a process owner may use instead of the role code.
_LANE_LABELS = {
    "养老协理员": Role.VILLAGE_ASSISTANT,
    "村(居)委会": Role.VILLAGE_ASSISTANT,
    "乡镇经办人": Role.CASEWORKER,
    "经办人": Role.CASEWORKER,
    "评估员": Role.ASSESSOR,
    "审批人": Role.APPROVER,
    "县民政局": Role.APPROVER,
    "服务机构": Role.PROVIDER,
    "施工单位": Role.PROVIDER,
    "养老机构": Role.FACILITY_ADMIN,
    "审计": Role.AUDITOR,
}


@lru_cache(maxsize=1024)  # asked for every new task; lanes are few
def role_for_lane(lane: str | None) -> str | None:
    """Map a lane name to a role code: the code itself, a code in brackets, or a known Chinese label."""
    if not lane:
        return None
    text = lane.strip()
    if text in Role.__members__.values() or text in {r.value for r in Role}:
        return Role(text).value
    match = re.search(r"[(（]\s*([a-z_]+)\s*[)）]", text)
    if match and match.group(1) in {r.value for r in Role}:
        return match.group(1)
    for label, role in _LANE_LABELS.items():
        if label in text:
            return role.value
    return None


def covers(actor: User, area_code: str | None) -> bool:
    """Whether the area lies inside the actor's scope (an area with no code is county-wide work)."""
    if area_code is None:
        return actor.area_code is not None and len(actor.area_code) <= 6
    return area_code.startswith(actor.area_code)


def require_area(actor: User, area_code: str | None) -> None:
    if not covers(actor, area_code):
        raise PermissionDenied("无权访问其他辖区的数据")


def can_read_case(actor: User, case_area: str | None) -> bool:
    """Whether the case's area lets the actor read it (outside staff also need work in it: `cases.may_read`)."""
    return actor.is_active and covers(actor, case_area)


# Staff of organisations outside the civil-affairs office (contracted providers, nursing homes). The elder
# register is closed to them; likewise they read only the cases they work on, not every case of their area.
_OUTSIDE_STAFF = {Role.PROVIDER, Role.FACILITY_ADMIN}
OUTSIDE_ROLES = frozenset(role.value for role in _OUTSIDE_STAFF)


def reads_only_own_cases(actor: User) -> bool:
    return actor.role in _OUTSIDE_STAFF


def can_work_task(actor: User, task: HumanTask) -> bool:
    """Whether the actor may claim or complete this task."""
    if not actor.is_active or not covers(actor, task.area_code):
        return False
    if task.assignee_id is not None and task.assignee_id != actor.id:
        return False
    if task.role is None:  # a diagram without lanes: the office's own staff work it
        return actor.role != Role.AUDITOR and not reads_only_own_cases(actor)
    return actor.role.value == task.role


def require_task(actor: User, task: HumanTask) -> None:
    if not covers(actor, task.area_code):
        raise PermissionDenied("无权访问其他辖区的任务")
    if task.assignee_id is not None and task.assignee_id != actor.id:
        raise PermissionDenied("该任务已由他人认领")
    if not can_work_task(actor, task):
        raise PermissionDenied("您的角色不能办理此任务")


def is_supervisor(actor: User) -> bool:
    return actor.role in (Role.APPROVER, Role.ADMIN)


def reads_all(actor: User) -> bool:
    return actor.role in _READ_ALL
