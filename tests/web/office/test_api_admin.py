"""/api/users and /api/areas for the county's own scripts: administrators only, inside their area, the same
rules as the pages, and in the OpenAPI document."""

from __future__ import annotations

from .conftest import OTHER_TOWNSHIP, TOWNSHIP


def test_administrators_list_add_and_change_users(office):
    admin, town = office["api"]["admin"], office["api"]["town_admin"]
    everyone = {u["username"] for u in admin.get("/api/users").json["items"]}
    mine = {u["username"] for u in town.get("/api/users").json["items"]}
    assert {"approver", "caseworker2", "caseworker"} <= everyone
    assert "caseworker" in mine and not mine & {"approver", "caseworker2"}
    filtered = admin.get("/api/users", query_string={"role": "caseworker", "area": TOWNSHIP}).json["items"]
    assert "caseworker" in {u["username"] for u in filtered}
    assert all(u["role"] == "caseworker" and u["area_code"].startswith(TOWNSHIP) for u in filtered)
    name = f"api.{office['kind']}"
    made = town.post(
        "/api/users",
        {
            "username": name,
            "display_name": "接口添加",
            "role": "village_assistant",
            "area_code": f"{TOWNSHIP}202",
        },
    )
    assert made.status_code == 201 and made.json["must_change_password"] is True
    assert len(made.json["temporary_password"]) == 12
    # A temporary password gets no token until it is changed on the page.
    client = office["app"].test_client()
    refused = client.post("/api/login", json={"username": name, "password": made.json["temporary_password"]})
    assert refused.status_code == 403 and "临时密码" in refused.json["message"]
    user_id = made.json["id"]
    changed = town.patch(
        f"/api/users/{user_id}", {"role": "caseworker", "area_code": TOWNSHIP, "is_active": False}
    )
    assert changed.status_code == 200 and (
        changed.json["role"],
        changed.json["area_code"],
        changed.json["is_active"],
    ) == (
        "caseworker",
        TOWNSHIP,
        False,
    )
    assert town.get(f"/api/users/{user_id}").json["is_active"] is False
    assert town.patch(f"/api/users/{user_id}", {"unlock": True}).status_code == 200


def test_the_api_refuses_outside_the_area_non_administrators_and_hostile_bodies(office):
    admin, town = office["api"]["admin"], office["api"]["town_admin"]
    other = next(u for u in admin.get("/api/users").json["items"] if u["username"] == "caseworker2")
    assert town.get(f"/api/users/{other['id']}").status_code == 403
    assert town.patch(f"/api/users/{other['id']}", {"is_active": False}).status_code == 403
    assert (
        town.post(
            "/api/users",
            {"username": "x.y", "display_name": "x", "role": "caseworker", "area_code": OTHER_TOWNSHIP},
        ).status_code
        == 403
    )
    for caller in ("caseworker", "approver", "provider"):
        assert office["api"][caller].get("/api/users").status_code == 403
        assert office["api"][caller].get("/api/areas").status_code == 403
        assert (
            office["api"][caller].post("/api/areas", {"code": f"{TOWNSHIP}288", "name": "x"}).status_code
            == 403
        )
    me = admin.get("/api/me").json["id"]
    own = admin.patch(f"/api/users/{me}", {"role": "caseworker"})
    assert own.status_code == 422 and own.json["field_errors"] == {"role": "不能修改本人的角色"}
    for body in (
        {},
        {"password_hash": "x"},
        {"unlock": "yes"},
        {"role": ["admin"]},
        {"organisation_id": "1"},
    ):
        response = admin.patch(f"/api/users/{other['id']}", body)
        assert response.status_code == 422, body
    assert admin.patch("/api/users/2147483647", {"is_active": True}).status_code == 404
    assert admin.patch("/api/users/99999999999", {"is_active": True}).status_code == 404
    no_token = office["app"].test_client().get("/api/users")
    assert no_token.status_code == 401


def test_areas_are_listed_and_added_below_ones_own(office):
    admin, town = office["api"]["admin"], office["api"]["town_admin"]
    areas = {a["code"]: a for a in town.get("/api/areas").json["items"]}
    assert TOWNSHIP in areas and "410825" in areas and OTHER_TOWNSHIP not in areas
    code = f"{TOWNSHIP}27{'1' if office['kind'] == 'sqlite' else '2'}"
    added = town.post("/api/areas", {"code": code, "name": "接口村"})
    assert added.status_code == 201 and added.json == {
        "code": code,
        "name": "接口村",
        "level": "village",
        "parent_code": TOWNSHIP,
        "retired": False,
    }
    assert town.post("/api/areas", {"code": code, "name": "接口村"}).status_code == 422
    assert town.post("/api/areas", {"code": f"{OTHER_TOWNSHIP}277", "name": "x"}).status_code == 422
    assert admin.post("/api/areas", {"code": 410825100299, "name": "数字"}).status_code == 422


def test_the_openapi_document_describes_the_administration_operations(office):
    doc = office["app"].test_client().get("/api/openapi.json").json
    assert set(doc["paths"]["/api/users"]) == {"get", "post"}
    assert set(doc["paths"]["/api/users/{user_id}"]) == {"get", "patch"}
    assert set(doc["paths"]["/api/areas"]) == {"get", "post"}
    patch = doc["paths"]["/api/users/{user_id}"]["patch"]
    assert patch["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/UserPatch"
    }
    assert set(doc["components"]["schemas"]["UserPatch"]["properties"]) == {
        "display_name",
        "role",
        "area_code",
        "organisation_id",
        "is_active",
        "unlock",
    }
    assert {"403", "404", "422", "401"} <= set(patch["responses"])
