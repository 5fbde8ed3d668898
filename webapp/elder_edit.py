"""Correcting an elder's record (village assistants, caseworkers): the registration form's checks, the
record's change history, and before a death or a move away is saved, the running cases it will reach."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for

from workflows import dossiers, elders, registration
from workflows.errors import ValidationFailed

from . import forms
from .auth import me
from .database import db, undo
from .i18n import _

bp = Blueprint("elder_edit", __name__)


@bp.route("/elders/<int:elder_id>/edit", methods=["GET", "POST"])
def edit(elder_id: int):
    session = db()
    elder = elders.get_elder(session, me(), elder_id)
    elders.require_role(me(), elders.WRITE_ROLES, "修改老人档案")
    schema, ui = registration.edit_form(session, me())
    values = forms.flatten(schema, registration.edit_values(elder))
    errors: dict[str, str] = {}
    message, effects, confirming = None, [], False
    if request.method == "POST":
        values = forms.compact(schema, forms.posted_values(request.form))
        data, errors = forms.parse(schema, values)
        try:
            if errors:
                raise ValidationFailed("表单填写有误，请按提示修改", field_errors=errors)
            effects = elders.leaving_effects(session, me(), elder.id, data.get("status") or "active")
            if effects and request.form.get("confirm") != "yes":
                # Saved, this reaches running cases: say which, and ask once more.
                confirming = True
            else:
                registration.update_from_form(session, me(), elder.id, data)
        except ValidationFailed as exc:
            undo()
            errors = exc.field_errors or {"_": exc.message}
            message, status = exc.message, exc.status
        else:
            if not confirming:
                flash(_("已保存对 {name} 档案的修改", name=elder.name), "success")
                return redirect(url_for("elders.elder_page", elder_id=elder.id))
    return render_template(
        "elders/edit.html",
        elder=elder,
        summary=dossiers.summarize_elder(session, elder),
        fields=forms.build_fields(schema, ui, values, errors),
        message=message,
        general=[m for p, m in errors.items() if p == "_"],
        effects=effects,
        confirming=confirming,
        history=elders.list_change_views(session, me(), elder.id)[:30],
    ), (status if message else 200)
