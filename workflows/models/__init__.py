"""All models, imported here so that metadata and Alembic see every table."""

from .base import Base
from .elders import Assessment, Elder, ElderChange, ElderStatus, HukouType, LivingArrangement, Sex
from .process import Case, CaseEvent, CaseStatus, CaseWait, EventKind, HumanTask, ProcessVersion, TaskStatus
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
    "ProcessVersion",
    "Role",
    "TaskStatus",
    "User",
]


def _import_all_model_modules() -> None:
    """Import every module of this package, so tables added in new files are always registered."""
    import importlib
    import pkgutil

    for info in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{info.name}")


_import_all_model_modules()
