"""A nursing home's pages: its waitlist (tiers, order, why each applicant is where they are, the offers under
way with their deadlines) and its beds (by type; register a vacancy, which starts the offer; history)."""

from __future__ import annotations

from datetime import datetime

from flask import Blueprint, flash, redirect, render_template, request, url_for

from workflows import clock
from workflows.errors import ValidationFailed
from workflows.processes.admission import beds, waitlist

from .auth import me
from .database import db, undo
from .i18n import _

bp = Blueprint("facility", __name__, url_prefix="/facility")


@bp.get("")
def index():
    found = beds.readable_facilities(db(), me())
    if len(found) == 1:
        return redirect(url_for("facility.waitlist_page", facility_id=found[0].id))
    return render_template("facility/index.html", facilities=found)


@bp.get("/<int:facility_id>")
def waitlist_page(facility_id: int):
    shown = beds.page(db(), me(), facility_id)
    return render_template("facility/waitlist.html", p=shown, now=clock.now())


@bp.route("/<int:facility_id>/beds", methods=["GET", "POST"])
def beds_page(facility_id: int):
    session = db()
    values, errors, message = {}, {}, None
    if request.method == "POST":
        values = {k: (request.form.get(k) or "").strip() for k in ("bed_label", "vacated_on", "note")}
        try:
            vacated = _moment(values["vacated_on"]) if values["vacated_on"] else None
            vacancy = waitlist.register_vacancy(
                session, me(), facility_id, values["bed_label"], vacated_on=vacated, note=values["note"][:500]
            )
        except ValidationFailed as exc:
            undo()
            errors, message, status = exc.field_errors or {"_": exc.message}, exc.message, exc.status
        else:
            flash(_("已登记空床 {bed}", bed=vacancy.bed_label), "success")
            return redirect(url_for("facility.beds_page", facility_id=facility_id) + f"#vacancy-{vacancy.id}")
    shown = beds.page(session, me(), facility_id)
    return render_template(
        "facility/beds.html", p=shown, now=clock.now(), values=values, errors=errors, message=message
    ), (status if message else 200)


@bp.post("/vacancies/<int:vacancy_id>/cancel")
def cancel_vacancy(vacancy_id: int):
    vacancy = waitlist.cancel_vacancy(
        db(), me(), vacancy_id, (request.form.get("reason") or "").strip() or "床位另作安排"
    )
    flash(_("已撤销空床 {bed}", bed=vacancy.bed_label), "success")
    return redirect(url_for("facility.beds_page", facility_id=vacancy.facility_id))


def _moment(text: str) -> datetime:
    """A time typed into a datetime-local field, in China's time."""
    try:
        return datetime.fromisoformat(text).replace(tzinfo=clock.LOCAL)
    except ValueError:
        raise ValidationFailed("空床时间格式不正确", field_errors={"vacated_on": "时间格式不正确"}) from None
