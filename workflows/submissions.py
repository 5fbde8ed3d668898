"""Submitted data is checked in one place, whoever submits it (a page, the API, the command line).

A step's data goes: the step's JSON Schema form (`forms.validate`), what its chosen options demand (a
comment where a choice needs one), then the checks the process declares for the step. An application
form goes: its JSON Schema, then its starter's own checks. All field errors come back as one
ValidationFailed, in Chinese, and nothing is written. A refusal the diagram itself throws while the step
runs (a `*_refused` message a process declares) is turned into the same kind of error by `refuse`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy.orm import Session

from . import forms, registry
from .errors import ValidationFailed
from .models import User


@dataclass(frozen=True)
class Checked:
    """What the checks found out about a submission that is accepted."""

    sends_back: bool
    comment: str | None


def check_step(
    session: Session,
    actor: User,
    task,
    case,
    data: dict,
    *,
    step: Mapping,
    comment: str | None = None,
    input_errors: Mapping[str, str] | None = None,
) -> Checked:
    """Check a step's data; raise ValidationFailed with every field error (nothing is written).

    `input_errors` are what the caller found reading the input (a page's field that is not a number):
    reported together with what the form says about the rest, so every field's problem shows at once."""
    errors = {**forms.validate(step.get("form"), data), **(input_errors or {})}
    if errors:
        raise ValidationFailed("表单填写有误，请按提示修改", field_errors=errors)
    process_key = step.get("process_id") or case.process_key
    for check in registry.current().checks_for(process_key, task.task_spec):
        check(session, actor, task, case, data)
    comment = comment or data.get("comment")
    picked = forms.chosen_options(step.get("form"), data)
    for option in picked:
        needed = option.get("x-requires-comment")
        if needed and not comment:
            raise ValidationFailed(needed, field_errors={"comment": needed})
    return Checked(sends_back=any(o.get("x-sends-back") for o in picked), comment=comment)


def check_application(
    schema: Mapping | None,
    data: Mapping,
    starter: registry.Starter,
    input_errors: Mapping[str, str] | None = None,
) -> None:
    """Check an application form against its schema and its starter's own checks, all errors at once."""
    errors = {
        **forms.validate(schema, data),
        **(starter.check(dict(data)) if starter.check else {}),
        **(input_errors or {}),
    }
    if errors:
        raise ValidationFailed("表单填写有误，请按提示修改", field_errors=errors)


def refuse(message: str, payload: Mapping) -> None:
    """If the diagram threw a declared refusal, refuse the submission with its field errors."""
    refusal = registry.current().refusal_for(message)
    if refusal is not None:
        text, field_errors = refusal(payload or {})
        raise ValidationFailed(text, field_errors=field_errors)
