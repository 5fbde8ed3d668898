"""All models, imported here so that metadata and Alembic see every table (a new model module is added
to this list)."""

from . import admission as admission
from . import attachments as attachments
from . import care as care
from . import office as office
from . import organisations as organisations
from . import outbox as outbox
from . import tokens as tokens
from .base import Base
from .elders import Assessment, Elder, ElderChange, ElderStatus, HukouType, LivingArrangement, Sex
from .process import (
    Case,
    CaseEvent,
    CaseMigration,
    CaseStatus,
    CaseWait,
    EventKind,
    HumanTask,
    MigrationBatch,
    MigrationStatus,
    ProcessDraft,
    ProcessVersion,
    TaskStatus,
)
from .registry import Area, AreaLevel, Role, User

__all__ = [
    "Assessment",
    "Elder",
    "ElderChange",
    "ElderStatus",
    "HukouType",
    "LivingArrangement",
    "Sex",
    "Area",
    "AreaLevel",
    "Base",
    "Case",
    "CaseEvent",
    "CaseStatus",
    "CaseWait",
    "EventKind",
    "HumanTask",
    "CaseMigration",
    "MigrationBatch",
    "MigrationStatus",
    "ProcessDraft",
    "ProcessVersion",
    "Role",
    "TaskStatus",
    "User",
]
