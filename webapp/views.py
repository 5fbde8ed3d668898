"""Blueprint registration (each area of the site is its own blueprint)."""

from flask import Flask


def init_app(app: Flask) -> None:
    @app.get("/healthz")
    def healthz():
        return {"status": "ok"}
