"""Workbook downloads: the file name in Chinese (RFC 5987), never cached, never sniffed."""

from __future__ import annotations

from urllib.parse import quote

from flask import Response

from workflows import clock
from workflows.deadlines import LOCAL

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def xlsx_response(content: bytes, name: str) -> Response:
    stamp = clock.now().astimezone(LOCAL).strftime("%Y%m%d-%H%M")
    filename = f"{name}-{stamp}.xlsx"
    response = Response(content, mimetype=XLSX)
    response.headers["Content-Disposition"] = (
        f"attachment; filename=\"export-{stamp}.xlsx\"; filename*=UTF-8''{quote(filename)}"
    )
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
