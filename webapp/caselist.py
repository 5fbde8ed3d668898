"""The case list: every case one may read, with filters, sort, paging and the total; and its Excel export."""

from __future__ import annotations

from flask import Blueprint, render_template, request

from casefiles import workbooks
from workflows import caselist, exports

from .auth import me
from .database import db
from .downloads import xlsx_response

bp = Blueprint("caselist", __name__)


@bp.get("/cases")
def case_list():
    session = db()
    flt = caselist.CaseFilter.parse(request.args)
    opts = caselist.options(session, me())
    caselist.check_filter_against(opts, flt)
    page = caselist.list_cases(session, me(), flt)
    return render_template(
        "caselist/list.html",
        page=page,
        flt=flt,
        opts=opts,
        statuses=caselist.STATUS_LABELS,
        sorts=caselist.SORT_LABELS,
    )


@bp.get("/cases.xlsx")
def case_list_export():
    session = db()
    flt = caselist.CaseFilter.parse(request.args)
    caselist.check_filter_against(caselist.options(session, me()), flt)
    table = exports.cases_table(session, me(), flt)
    return xlsx_response(workbooks.render([table]), "案件列表")
