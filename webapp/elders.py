"""Elder pages: find an elder in one's area, and their file (profile, 政策找人 matches, cases, assessments)."""

from __future__ import annotations

from flask import Blueprint, render_template, request

from workflows import dossiers, elders

from . import db
from .auth import me

bp = Blueprint("elders", __name__)


@bp.get("/elders")
def elder_list():
    session = db()
    q = (request.args.get("q") or "").strip()[:50]
    found = elders.search_elders(session, me(), q, limit=50)
    return render_template(
        "elders/list.html",
        q=q,
        elders=[dossiers.summarize_elder(session, e) for e in found],
        can_start=me().role in dossiers.START_ROLES,
    )


@bp.get("/elders/<int:elder_id>")
def elder_page(elder_id: int):
    dossier = dossiers.elder_dossier(db(), me(), elder_id)
    return render_template("elders/elder.html", d=dossier, s=dossier.summary)
