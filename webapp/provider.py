"""A provider's pages: its orders, the services recorded month by month, settlements, and what was sent
back and why (`workflows.processes.home_care.orders`)."""

from __future__ import annotations

from datetime import date

from flask import Blueprint, render_template, request

from workflows.processes.home_care import orders

from .auth import me
from .database import db

bp = Blueprint("provider", __name__, url_prefix="/provider")


@bp.get("")
def index():
    session = db()
    chosen = _month(request.args.get("month", ""))
    return render_template(
        "provider/index.html",
        p=orders.page(session, me(), chosen),
        months=orders.months_with_work(session, me()),
        chosen=chosen,
    )


@bp.get("/months/<int:month_id>")
def month(month_id: int):
    return render_template("provider/month.html", m=orders.month_detail(db(), me(), month_id))


def _month(text: str) -> date | None:
    try:
        return date.fromisoformat(text + "-01") if len(text) == 7 else None
    except ValueError:
        return None
