"""Security headers on every response, and limits on what a request may send.

Pages run no inline script and no inline style: a Content-Security-Policy says so to the browser, so an
injected `<script>` or `onerror=` does nothing even if some text were ever rendered unescaped. Request
bodies are bounded in size (MAX_CONTENT_LENGTH: a 413, answered by the app's error handlers) and JSON bodies in nesting depth (422): a body
nested 100,000 deep is refused before any parser recurses into it.
"""

from __future__ import annotations

import base64
import hashlib

from flask import Flask, request

from workflows.errors import ValidationFailed

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",  # bpmn-js draws small icons as data: images
        "font-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
# The studio's editors (bpmn-js, its properties panel, dmn-js) write a few fixed style="" attributes through
# innerHTML (a container's height, the bpmn.io logo's place, the icons' strokes). On the studio's pages the
# policy allows exactly these texts by hash ('unsafe-hashes' covers attributes, nothing else): no other
# inline style, and still no inline script.
LIBRARY_STYLE_ATTRIBUTES = (
    "height: 100%",
    "position: absolute; bottom: 15px; right: 15px; z-index: 100;",
    "vertical-align:middle",
    "margin: 15px 20px 15px 10px; align-self: center;",
    "fill:currentColor;stroke:currentColor;stroke-width:100;opacity:.5;",
    "fill:none;stroke:currentColor;stroke-width:100;",
    "fill:none;stroke:currentColor;stroke-width:100;stroke-linejoin:round;",
    "stroke:currentColor;stroke-width:100;stroke-linecap:round;",
)
STUDIO_POLICY = CONTENT_SECURITY_POLICY.replace(
    "style-src 'self'",
    "style-src 'self' 'unsafe-hashes' "
    + " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"
        for text in LIBRARY_STYLE_ATTRIBUTES
    ),
)
HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
    "Cross-Origin-Opener-Policy": "same-origin",
}
MAX_JSON_DEPTH = 32


def too_deep(body: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether a JSON text nests objects/arrays deeper than `limit` (a scan of brackets outside strings)."""
    depth, in_string, escaped = 0, False, False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > limit:
                return True
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return False


def unstorable_text(value) -> bool:
    """Whether a text, or any text inside a JSON value, holds what no database column can keep: the NUL
    character (PostgreSQL refuses it in text) or half of a UTF-16 surrogate pair (not encodable at all)."""
    if isinstance(value, str):
        if "\x00" in value:
            return True
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(unstorable_text(k) or unstorable_text(v) for k, v in value.items())
    if isinstance(value, list):
        return any(unstorable_text(v) for v in value)
    return False


def init_app(app: Flask) -> None:
    @app.before_request
    def _refuse_deep_json():
        if request.is_json and too_deep(request.get_data(cache=True)):
            message = f"请求内容嵌套过深（超过 {MAX_JSON_DEPTH} 层）"
            raise ValidationFailed(message, field_errors={"_": message})
        return None

    @app.before_request
    def _refuse_unstorable_text():
        # Found by fuzzing the API: a NUL in a search, a login or a form reached PostgreSQL as a 500.
        texts = [request.path, *(v for key, values in request.args.lists() for v in (key, *values))]
        if request.method in ("POST", "PUT", "PATCH") and request.mimetype != "application/json":
            texts += [v for key, values in request.form.lists() for v in (key, *values)]
        body = request.get_json(silent=True, cache=True) if request.is_json else None
        if unstorable_text(texts) or unstorable_text(body):
            message = "请求中含有不能保存的字符（空字符或残缺的 Unicode 代理字符）"
            raise ValidationFailed(message, field_errors={"_": message})
        return None

    @app.after_request
    def _security_headers(response):
        if request.blueprint == "studio":
            response.headers.setdefault("Content-Security-Policy", STUDIO_POLICY)
        for name, value in HEADERS.items():
            response.headers.setdefault(name, value)
        if request.is_secure:
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        return response
