"""Administration through /api, for the county's own scripts: users and areas, only for administrators and
only inside their area, through the same use cases as the pages (declared with `api.operation`, so they
are in the OpenAPI document)."""

from __future__ import annotations

from flask import g, request

from workflows import areas, users
from workflows.errors import ValidationFailed

from . import openapi
from .api import _body, _iso, operation
from .database import db


def user_json(u) -> dict:
    return {
        "id": u.id,
        "username": u.username,
        "display_name": u.display_name,
        "role": u.role.value,
        "area_code": u.area_code,
        "organisation_id": u.organisation_id,
        "is_active": u.is_active,
        "locked": users.is_locked(u),
        "must_change_password": u.must_change_password,
        "created_at": _iso(u.created_at),
    }


def area_json(a) -> dict:
    return {
        "code": a.code,
        "name": a.name,
        "level": a.level.value,
        "parent_code": a.parent_code,
        "retired": a.retired_at is not None,
    }


_USER_QUERY = [
    {"name": "q", "schema": {"type": "string"}, "description": "用户名或姓名片段"},
    {"name": "role", "schema": {"type": "string"}},
    {"name": "area", "schema": {"type": "string"}, "description": "区划代码（含下级）"},
]


@operation(
    "/users",
    "GET",
    summary="本辖区用户（系统管理员） / users in my area (administrators)",
    tag="admin",
    query=_USER_QUERY,
    response="UserList",
    errors=(403,),
)
def list_users():
    found = users.list_users(
        db(),
        g.api_user,
        q=request.args.get("q"),
        role=request.args.get("role") or None,
        area_code=request.args.get("area") or None,
    )
    return {"items": [user_json(u) for u in found]}


@operation(
    "/users",
    "POST",
    summary="添加用户，返回一次性临时密码 / add a user; its temporary password is returned once",
    tag="admin",
    body="UserInput",
    ok=201,
    response="IssuedUser",
    errors=(403, 422),
)
def add_user():
    payload = _body()
    data = {k: payload.get(k) for k in ("username", "display_name", "role", "area_code", "organisation_id")}
    issued = users.add_user(db(), g.api_user, data)
    return {**user_json(issued.user), "temporary_password": issued.temporary_password}


@operation(
    "/users/<int:user_id>",
    "GET",
    summary="一个用户 / one user",
    tag="admin",
    response="AdminUser",
    errors=(403, 404),
)
def get_user(user_id: int):
    return user_json(users.get_user(db(), g.api_user, user_id))


@operation(
    "/users/<int:user_id>",
    "PATCH",
    summary="修改角色、区划、机构、启用，或解除锁定 / change role, area, organisation, active; unlock",
    tag="admin",
    body="UserPatch",
    response="AdminUser",
    errors=(403, 404, 422),
)
def patch_user(user_id: int):
    payload = _body()
    if not payload:
        raise ValidationFailed("没有要修改的内容", field_errors={"_": "没有要修改的内容"})
    if "unlock" in payload and not isinstance(payload["unlock"], bool):
        raise ValidationFailed("unlock 应为 true 或 false", field_errors={"unlock": "应为 true 或 false"})
    return user_json(users.update_user(db(), g.api_user, user_id, payload))


@operation(
    "/areas",
    "GET",
    summary="本辖区行政区划 / areas of my county (mine and those below)",
    tag="admin",
    response="AreaList",
    errors=(403,),
)
def list_areas():
    users.require_admin(g.api_user)
    return {"items": [area_json(a) for a in areas.list_areas(db(), g.api_user)]}


@operation(
    "/areas",
    "POST",
    summary="添加下级行政区划 / add an area below mine",
    tag="admin",
    body="AreaInput",
    ok=201,
    response="Area",
    errors=(403, 422),
)
def add_area():
    payload = _body()
    code, name = payload.get("code"), payload.get("name")
    if not isinstance(code, str) or not isinstance(name, str):
        raise ValidationFailed("请填写区划代码和名称", field_errors={"code": "应为文本", "name": "应为文本"})
    return area_json(areas.add_area(db(), code, name, actor=g.api_user))


_ADMIN_USER = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "username": {"type": "string"},
        "display_name": {"type": "string"},
        "role": {"type": "string", "enum": [r for r in openapi.ROLES]},
        "area_code": {"type": "string"},
        "organisation_id": {"type": "integer", "nullable": True},
        "is_active": {"type": "boolean"},
        "locked": {"type": "boolean"},
        "must_change_password": {"type": "boolean"},
        "created_at": {"type": "string", "format": "date-time", "nullable": True},
    },
}
_AREA = {
    "type": "object",
    "properties": {
        "code": {"type": "string", "pattern": "^[0-9]{6}([0-9]{3}){0,2}$"},
        "name": {"type": "string"},
        "level": {"type": "string", "enum": ["county", "township", "village"]},
        "parent_code": {"type": "string", "nullable": True},
        "retired": {"type": "boolean"},
    },
}
openapi.SCHEMAS.update(
    {
        "AdminUser": _ADMIN_USER,
        "UserList": {
            "type": "object",
            "properties": {"items": {"type": "array", "items": {"$ref": "#/components/schemas/AdminUser"}}},
        },
        "IssuedUser": {
            "allOf": [
                {"$ref": "#/components/schemas/AdminUser"},
                {
                    "type": "object",
                    "properties": {
                        "temporary_password": {
                            "type": "string",
                            "description": "只返回这一次，首次登录须修改 / returned once; must be changed at first sign-in",
                        }
                    },
                },
            ]
        },
        "UserInput": {
            "type": "object",
            "required": ["username", "display_name", "role", "area_code"],
            "properties": {
                "username": {"type": "string", "pattern": "^[A-Za-z0-9_.-]{2,64}$"},
                "display_name": {"type": "string", "maxLength": 64},
                "role": {"type": "string", "enum": [r for r in openapi.ROLES]},
                "area_code": {"type": "string"},
                "organisation_id": {"type": "integer", "nullable": True},
            },
        },
        "UserPatch": {
            "type": "object",
            "minProperties": 1,
            "additionalProperties": False,
            "properties": {
                "display_name": {"type": "string", "maxLength": 64},
                "role": {"type": "string", "enum": [r for r in openapi.ROLES]},
                "area_code": {"type": "string"},
                "organisation_id": {"type": "integer", "nullable": True},
                "is_active": {"type": "boolean"},
                "unlock": {"type": "boolean", "description": "true 解除登录锁定 / lift a sign-in lock"},
            },
        },
        "Area": _AREA,
        "AreaList": {
            "type": "object",
            "properties": {"items": {"type": "array", "items": {"$ref": "#/components/schemas/Area"}}},
        },
        "AreaInput": {
            "type": "object",
            "required": ["code", "name"],
            "properties": {"code": {"type": "string"}, "name": {"type": "string", "maxLength": 64}},
        },
    }
)
