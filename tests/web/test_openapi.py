"""The OpenAPI document describes exactly the /api routes, and its references resolve."""

from __future__ import annotations

from webapp.openapi import openapi_path


def test_every_api_route_is_documented_and_nothing_else(app, anonymous):
    doc = anonymous.get("/api/openapi.json").json
    assert doc["openapi"].startswith("3.")
    documented = {(path, method.upper()) for path, ops in doc["paths"].items() for method in ops}
    routed = {
        (openapi_path(rule.rule[len("/api") :]), method)
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/api/")
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    assert routed == documented
    for required in (
        ("/api/tasks", "GET"),
        ("/api/tasks/{task_id}", "GET"),
        ("/api/tasks/{task_id}/claim", "POST"),
        ("/api/tasks/{task_id}/complete", "POST"),
        ("/api/cases", "POST"),
        ("/api/cases/{case_id}", "GET"),
        ("/api/elders", "GET"),
        ("/api/elders", "POST"),
        ("/api/processes", "GET"),
        ("/api/login", "POST"),
    ):
        assert required in documented


def test_references_resolve_and_errors_are_described(anonymous):
    doc = anonymous.get("/api/openapi.json").json
    schemas = doc["components"]["schemas"]

    def refs(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "$ref":
                    yield value
                else:
                    yield from refs(value)
        elif isinstance(node, list):
            for value in node:
                yield from refs(value)

    for ref in refs(doc):
        assert ref.startswith("#/components/schemas/") and ref.rsplit("/", 1)[1] in schemas, ref
    complete = doc["paths"]["/api/tasks/{task_id}/complete"]["post"]
    assert set(complete["responses"]) >= {"200", "401", "403", "404", "409", "422"}
    assert complete["parameters"][0] == {
        "name": "task_id",
        "in": "path",
        "required": True,
        "schema": {"type": "string"},
    }
    assert doc["paths"]["/api/login"]["post"]["security"] == []
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
