"""Elder pages: find an elder in one's area, register one, and their file (profile, 政策找人 matches, cases,
assessments)."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for

from workflows import dossiers, elderlist, elders, registration, starting
from workflows.errors import DomainError, ValidationFailed
from workflows.models.elders import SUPPORT_FLAGS
from workflows.rules.assessment import DisabilityLevel

from . import forms
from .auth import me
from .database import db, undo
from .i18n import _

bp = Blueprint("elders", __name__)


@bp.get("/elders")
def elder_list():
    session = db()
    flt = elderlist.ElderFilter.parse(request.args)
    page = elderlist.list_elders(session, me(), flt)
    return render_template(
        "elders/list.html",
        page=page,
        flt=flt,
        villages=elderlist.village_options(session, me()),
        sorts=elderlist.SORT_LABELS,
        flags=SUPPORT_FLAGS,
        levels=[*(lv.value for lv in DisabilityLevel), elderlist.NO_ASSESSMENT],
        can_start=me().role in starting.START_ROLES,
        can_register=me().role in elders.WRITE_ROLES,
    )


@bp.route("/elders/new", methods=["GET", "POST"])
def register():
    """Register an elder on the form; a refusal comes back with the errors beside the fields, input kept."""
    session = db()
    schema, ui = registration.registration_form(session, me())
    values: dict[str, list[str]] = {}
    errors: dict[str, str] = {}
    message, existing_id, can_open_existing = None, None, False
    if request.method == "POST":
        values = forms.compact(schema, forms.posted_values(request.form))
        data, errors = forms.parse(schema, values)
        try:
            if errors:
                raise ValidationFailed("表单填写有误，请按提示修改", field_errors=errors)
            elder = registration.register_from_form(session, me(), data)
        except DomainError as exc:
            undo()
            errors = exc.field_errors or {"_": exc.message}
            # Field by field beside the inputs; the long summary only when a problem has no field to sit by.
            shown = {f.path for f in _all_fields(forms.build_fields(schema, ui, values, {}))}
            message = exc.message if set(errors) - shown else _("老人信息有误，请按提示修改")
            existing_id = getattr(exc, "existing_id", None)
            if existing_id is not None:
                message = exc.message
                can_open_existing = registration.can_read_elder(session, me(), existing_id)
        else:
            flash(_("已登记：{name}", name=elder.name), "success")
            return redirect(url_for("elders.elder_page", elder_id=elder.id))
    return render_template(
        "elders/register.html",
        fields=forms.build_fields(schema, ui, values, errors),
        message=message,
        general=[m for p, m in errors.items() if p == "_"],
        existing_id=existing_id,
        can_open_existing=can_open_existing,
    ), (422 if message else 200)


def _all_fields(fields):
    for f in fields:
        yield f
        yield from _all_fields(f.children)
        for row in f.rows:
            yield from _all_fields(row)


@bp.get("/elders/<int:elder_id>")
def elder_page(elder_id: int):
    dossier = dossiers.elder_dossier(db(), me(), elder_id)
    return render_template(
        "elders/elder.html",
        d=dossier,
        s=dossier.summary,
        can_edit=me().role in elders.WRITE_ROLES,
        history=elders.list_change_views(db(), me(), elder_id)[:20],
    )
