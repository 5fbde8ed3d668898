"""What the assessor's page scores along with: GB/T 42195's items, groups, levels and adjustments, for the
script that shows the running total and level while the form is filled in (the server scores again, and
its result is the one that counts)."""

from __future__ import annotations

from flask import Blueprint, jsonify

from workflows.rules import assessment

bp = Blueprint("assessment", __name__)


@bp.get("/assessment/scale.json")
def scale():
    response = jsonify(assessment.scale())
    response.headers["Cache-Control"] = "private, max-age=3600"
    return response
