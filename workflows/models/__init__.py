"""All models, imported here so that metadata and Alembic see every table."""

from .base import Base
from .elders import Assessment, Elder, ElderChange, ElderStatus, HukouType, LivingArrangement, Sex
from .process import CaseEvent, CaseStatus, CaseWait, EventKind, HumanTask, ProcessVersion, TaskStatus, Case
from .registry import Area, AreaLevel, Role, User

__all__ = [
    "Assessment", "Elder", "ElderChange", "ElderStatus", "HukouType", "LivingArrangement", "Sex",
    "Area", "AreaLevel", "Base", "Case", "CaseEvent", "CaseStatus", "CaseWait", "EventKind", "HumanTask",
    "ProcessVersion", "Role", "TaskStatus", "User",
]
