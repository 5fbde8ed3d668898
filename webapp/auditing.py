"""The auditor's pages: case events in scope, hash-chain checks, the sign-in and refusal log, samples (抽查)."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for

from casefiles import workbooks
from workflows import audit, audit_review, caselist, clock, dashboard, exports, office_log
from workflows.errors import Conflict, ValidationFailed
from workflows.listing import Args
from workflows.models import EventKind
from workflows.models.supervision import LogKind
from workflows.rules.idnumber import mask_id_number

from .auth import me
from .database import db, undo
from .downloads import xlsx_response
from .i18n import _

bp = Blueprint("auditing", __name__)


@bp.get("/audit")
def events():
    session = db()
    flt = audit_review.EventFilter.parse(request.args)
    page = audit_review.list_events(session, me(), flt)
    return render_template(
        "auditing/events.html",
        page=page,
        flt=flt,
        kinds=[(k.value, audit.EVENT_LABELS[k]) for k in EventKind],
        opts=caselist.options(session, me()),
    )


@bp.get("/audit.xlsx")
def events_export():
    flt = audit_review.EventFilter.parse(request.args)
    table = exports.events_table(db(), me(), flt)
    return xlsx_response(workbooks.render([table]), "审计记录")


@bp.get("/audit/cases/<int:case_id>")
def verify_case(case_id: int):
    check = audit_review.verify_case(db(), me(), case_id)
    return render_template("auditing/verify_case.html", check=check)


@bp.route("/audit/verify", methods=["GET", "POST"])
def verify_area():
    session = db()
    areas = caselist.options(session, me()).areas
    result = None
    if request.method == "POST":
        a = Args(request.form)
        area = a.area("area")
        a.check()
        result = audit_review.verify_area(session, me(), area)
    else:
        audit_review.require_auditor(me())
    return render_template("auditing/verify_area.html", result=result, areas=areas)


@bp.get("/audit/log")
def office():
    flt = audit_review.LogFilter.parse(request.args)
    page = audit_review.list_office_log(db(), me(), flt)
    return render_template(
        "auditing/log.html",
        page=page,
        flt=flt,
        kinds=[(k.value, office_log.KIND_LABELS[k]) for k in LogKind],
        kind_labels={k.value: office_log.KIND_LABELS[k] for k in LogKind},
    )


@bp.get("/audit/log.xlsx")
def office_export():
    flt = audit_review.LogFilter.parse(request.args)
    table = exports.office_log_table(db(), me(), flt)
    return xlsx_response(workbooks.render([table]), "登录与越权日志")


@bp.route("/audit/samples", methods=["GET", "POST"])
def samples():
    session = db()
    errors: dict[str, str] = {}
    message = None
    form = {}
    if request.method == "POST":
        form = {k: request.form.get(k, "") for k in ("process", "month", "size", "area", "note")}
        a = Args(request.form)
        month = a.month("month")
        size = a.number("size", None, 1, audit_review.MAX_SAMPLE)
        area = a.area("area")
        if month is None and "month" not in a.errors:
            a.errors["month"] = "请选择月份"
        if size is None and "size" not in a.errors:
            a.errors["size"] = "请填写抽取数量"
        try:
            a.check("抽查条件有误")
            sample = audit_review.draw_sample(
                session, me(), form["process"], month, size, area=area, note=form["note"]
            )
        except ValidationFailed as exc:
            undo()
            errors, message = exc.field_errors, exc.message
        else:
            flash(
                _(
                    "已抽取 {n} 件，请逐件核查",
                    n=len(audit_review.get_sample(session, me(), sample.id).items),
                ),
                "success",
            )
            return redirect(url_for("auditing.sample", sample_id=sample.id))
    else:
        audit_review.require_auditor(me())
    return render_template(
        "auditing/samples.html",
        samples=audit_review.list_samples(session, me()),
        opts=caselist.options(session, me()),
        months=_months(),
        can_draw=me().role in audit_review.SAMPLE_ROLES,
        errors=errors,
        message=message,
        form=form,
    ), (422 if message else 200)


def _months():
    return dashboard.months_back(clock.today(), 13)


@bp.get("/audit/samples/<int:sample_id>")
def sample(sample_id: int):
    view = audit_review.get_sample(db(), me(), sample_id)
    return render_template(
        "auditing/sample.html",
        view=view,
        can_review=me().role in audit_review.SAMPLE_ROLES,
        outcomes=audit_review.OUTCOME_LABELS,
    )


@bp.get("/audit/samples/<int:sample_id>.xlsx")
def sample_export(sample_id: int):
    table = exports.sample_table(db(), me(), sample_id)
    return xlsx_response(workbooks.render([table]), f"抽查样本{sample_id}")


@bp.post("/audit/samples/items/<int:item_id>")
def review(item_id: int):
    session = db()
    try:
        item = audit_review.review_item(
            session,
            me(),
            item_id,
            request.form.get("outcome", ""),
            request.form.get("note", ""),
            expected=request.form.get("expected") or None,
        )
    except (ValidationFailed, Conflict) as exc:
        undo()
        flash(exc.message, "error")
        sample_id = request.form.get("sample", "")
        target = (
            url_for("auditing.sample", sample_id=int(sample_id))
            if sample_id.isdigit() and len(sample_id) < 10
            else url_for("auditing.samples")
        )
        return redirect(target)
    flash(_("已登记核查结果"), "success")
    return redirect(url_for("auditing.sample", sample_id=item.sample_id) + f"#item-{item.id}")


@bp.app_template_filter("masked_id")
def masked_id(number: str | None) -> str:
    return mask_id_number(number) if number else ""
