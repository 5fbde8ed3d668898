"""The OpenAPI 3 document of /api, built from the declared operations (see `api.operation`)."""

from __future__ import annotations

import re

from workflows.models import Role

ROLES = [role.value for role in Role]
_PARAM = re.compile(r"<(?:(\w+):)?(\w+)>")
_STATUS_TEXT = {
    400: "请求格式有误 / malformed request",
    401: "未登录或令牌无效 / missing or invalid token",
    403: "角色或辖区不允许 / role or area does not allow this",
    404: "不存在 / not found",
    409: "冲突：已被他人办理或已登记 / conflict: already done by someone else",
    422: "数据校验未通过（field_errors 指明各字段） / invalid data",
    503: "数据库暂时不可用，未保存；请按 Retry-After 秒数后重试 / database unavailable, nothing saved; retry",
}

_TASK = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "case_id": {"type": "integer"},
        "process": {"type": "string"},
        "step": {"type": "string"},
        "name": {"type": "string"},
        "role": {"type": "string", "nullable": True},
        "area_code": {"type": "string", "nullable": True},
        "status": {"type": "string"},
        "assignee_id": {"type": "integer", "nullable": True},
        "due_at": {"type": "string", "format": "date-time", "nullable": True},
        "due_state": {"type": "string", "enum": ["overdue", "due_soon", "on_time", "no_due"]},
        "created_at": {"type": "string", "format": "date-time"},
        "elder_id": {"type": "integer", "nullable": True},
        "elder_name": {"type": "string", "nullable": True},
        "elder_id_number": {"type": "string", "nullable": True, "description": "已脱敏 / masked"},
    },
}
_CASE = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "process": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "string", "enum": ["running", "completed", "cancelled", "error"]},
        "area_code": {"type": "string", "nullable": True},
        "elder_id": {"type": "integer", "nullable": True},
        "current_step": {"type": "string"},
        "started_at": {"type": "string", "format": "date-time"},
        "updated_at": {"type": "string", "format": "date-time"},
        "ended_at": {"type": "string", "format": "date-time", "nullable": True},
    },
}
_ELDER = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "name": {"type": "string"},
        "id_number": {"type": "string", "description": "已脱敏 / masked"},
        "phone": {"type": "string", "nullable": True},
        "sex": {"type": "string"},
        "birth_year": {"type": "integer"},
        "residence_area_code": {"type": "string"},
        "address": {"type": "string"},
        "status": {"type": "string"},
        "disability_level": {"type": "string", "nullable": True},
        "flags": {"type": "array", "items": {"type": "string"}},
    },
}
SCHEMAS = {
    "Error": {
        "type": "object",
        "required": ["message", "field_errors"],
        "properties": {
            "message": {"type": "string", "description": "中文说明 / Chinese message"},
            "field_errors": {"type": "object", "additionalProperties": {"type": "string"}},
            "problems": {
                "type": "array",
                "description": "部署检查发现的问题（POST /api/processes 的 422） / the deploy report",
                "items": {"$ref": "#/components/schemas/Problem"},
            },
        },
    },
    "Problem": {
        "type": "object",
        "properties": {
            "file": {"type": "string"},
            "element": {"type": "string", "nullable": True, "description": "BPMN/DMN 元素 id"},
            "name": {"type": "string", "nullable": True},
            "line": {"type": "integer", "nullable": True},
            "severity": {"type": "string", "enum": ["error", "warning"]},
            "message": {"type": "string", "description": "中文说明"},
        },
    },
    "DeployRequest": {
        "type": "object",
        "required": ["files", "comment"],
        "properties": {
            "files": {
                "type": "array",
                "items": {"type": "string", "format": "binary"},
                "description": "多个 .bpmn、.dmn、.json（表单）文件，或一个 .zip；每个不超过 20 MB",
            },
            "comment": {"type": "string", "description": "部署说明（必填）：本版改了什么、为什么"},
        },
    },
    "DeployResult": {
        "type": "object",
        "properties": {
            "key": {"type": "string", "description": "流程包的主流程"},
            "version": {"type": "integer"},
            "deployed": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "key": {"type": "string"},
                        "version": {"type": "integer"},
                        "created": {"type": "boolean", "description": "false：内容与已有版本相同，未新建"},
                    },
                },
            },
            "warnings": {"type": "array", "items": {"$ref": "#/components/schemas/Problem"}},
        },
    },
    "ProcessDetail": {
        "type": "object",
        "properties": {
            "key": {"type": "string"},
            "name": {"type": "string"},
            "versions": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "version": {"type": "integer"},
                        "content_hash": {"type": "string"},
                        "deployed_at": {"type": "string", "format": "date-time"},
                        "comment": {"type": "string", "nullable": True},
                        "running_cases": {"type": "integer"},
                    },
                },
            },
            "start": {
                "type": "object",
                "description": "发起方式：POST /api/cases 的 data 按 schema 填写；needs_elder 为 true 时须给 elder_id",
                "properties": {
                    "startable": {"type": "boolean"},
                    "needs_elder": {"type": "boolean"},
                    "step": {"type": "string", "nullable": True},
                    "step_name": {"type": "string", "nullable": True},
                    "filled_by_starter": {
                        "type": "boolean",
                        "description": "true：发起时提交的 data 即完成该环节",
                    },
                    "schema": {"type": "object", "nullable": True, "description": "JSON Schema"},
                    "ui_schema": {"type": "object", "nullable": True},
                },
            },
        },
    },
    "Message": {"type": "object", "properties": {"message": {"type": "string"}}},
    "LoginRequest": {
        "type": "object",
        "required": ["username", "password"],
        "properties": {"username": {"type": "string"}, "password": {"type": "string", "format": "password"}},
    },
    "Token": {
        "type": "object",
        "properties": {
            "token": {"type": "string"},
            "token_type": {"type": "string", "enum": ["Bearer"]},
            "expires_at": {"type": "string", "format": "date-time"},
        },
    },
    "User": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "username": {"type": "string"},
            "display_name": {"type": "string"},
            "role": {"type": "string"},
            "area_code": {"type": "string"},
            "locale": {"type": "string"},
        },
    },
    "Task": _TASK,
    "TaskList": {
        "type": "object",
        "properties": {
            "items": {"type": "array", "items": {"$ref": "#/components/schemas/Task"}},
            "total": {"type": "integer"},
            "page": {"type": "integer"},
            "per_page": {"type": "integer"},
            "counts": {
                "type": "object",
                "description": "各筛选项的计数 / counts per filter value",
                "additionalProperties": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "value": {"type": "string"},
                            "label": {"type": "string"},
                            "count": {"type": "integer"},
                        },
                    },
                },
            },
        },
    },
    "TaskDetail": {
        "type": "object",
        "properties": {
            "task": {"$ref": "#/components/schemas/Task"},
            "case": {"$ref": "#/components/schemas/Case"},
            "form": {"type": "object", "nullable": True, "description": "JSON Schema"},
            "ui_form": {"type": "object", "nullable": True},
            "instructions": {"type": "string"},
            "can_complete": {"type": "boolean"},
            "can_claim": {"type": "boolean"},
        },
    },
    "AssignRequest": {
        "type": "object",
        "required": ["assignee_id"],
        "properties": {"assignee_id": {"type": "integer"}},
    },
    "CompleteRequest": {
        "type": "object",
        "required": ["data"],
        "properties": {
            "data": {"type": "object", "description": "符合任务表单 JSON Schema 的数据"},
            "comment": {"type": "string", "description": "办理意见；退回（send_back）时必填"},
        },
    },
    "Outcome": {
        "type": "object",
        "properties": {
            "case": {
                "type": "object",
                "properties": {
                    "id": {"type": "integer"},
                    "process": {"type": "string"},
                    "status": {"type": "string"},
                    "area_code": {"type": "string", "nullable": True},
                    "elder_id": {"type": "integer", "nullable": True},
                    "ended_at": {"type": "string", "format": "date-time", "nullable": True},
                },
            },
            "completed": {"type": "boolean"},
            "next_tasks": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "string"},
                        "step": {"type": "string"},
                        "name": {"type": "string"},
                        "role": {"type": "string", "nullable": True},
                    },
                },
            },
        },
    },
    "Case": _CASE,
    "CaseDetail": {
        "allOf": [
            {"$ref": "#/components/schemas/Case"},
            {
                "type": "object",
                "properties": {
                    "version": {"type": "integer"},
                    "process_name": {"type": "string"},
                    "data": {"type": "object"},
                    "open_tasks": {"type": "array", "items": {"$ref": "#/components/schemas/Task"}},
                    "events": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "seq": {"type": "integer"},
                                "at": {"type": "string", "format": "date-time"},
                                "actor": {"type": "string", "nullable": True},
                                "kind": {"type": "string"},
                                "task": {"type": "string", "nullable": True},
                                "comment": {"type": "string", "nullable": True},
                            },
                        },
                    },
                    "documents": {"type": "array", "items": {"type": "object"}},
                },
            },
        ]
    },
    "StartCaseRequest": {
        "type": "object",
        "required": ["process"],
        "properties": {
            "process": {"type": "string", "description": "流程标识，如 home_care"},
            "elder_id": {
                "type": "integer",
                "description": "老人档案编号；不涉及老人的流程（GET /api/processes/{key} 的 start.needs_elder 为 false）可省略",
            },
            "data": {
                "type": "object",
                "description": (
                    "申请表数据：home_care、admission、visiting_care、assessment 按各自的申请表"
                    "（如 bpmn/home_care/forms/home_care_application.json）；"
                    "其他流程为首个环节的表单数据（若该环节由发起人办理，将一并提交）"
                ),
            },
            "comment": {"type": "string"},
        },
    },
    "Elder": _ELDER,
    "ElderList": {
        "type": "object",
        "properties": {
            "items": {"type": "array", "items": {"$ref": "#/components/schemas/ElderListItem"}},
            "total": {"type": "integer", "description": "符合条件的总数 / matching rows on all pages"},
            "page": {"type": "integer"},
            "per_page": {"type": "integer"},
            "pages": {"type": "integer"},
        },
    },
    "ElderListItem": {
        "allOf": [
            {"$ref": "#/components/schemas/Elder"},
            {
                "type": "object",
                "properties": {
                    "age": {"type": "integer"},
                    "area_path": {"type": "string"},
                    "assessment_valid_until": {"type": "string", "format": "date", "nullable": True},
                },
            },
        ]
    },
    "CaseList": {
        "type": "object",
        "properties": {
            "items": {"type": "array", "items": {"$ref": "#/components/schemas/CaseListItem"}},
            "total": {"type": "integer", "description": "符合条件的总数 / matching rows on all pages"},
            "page": {"type": "integer"},
            "per_page": {"type": "integer"},
            "pages": {"type": "integer"},
        },
    },
    "CaseListItem": {
        "allOf": [
            {"$ref": "#/components/schemas/Case"},
            {
                "type": "object",
                "properties": {
                    "process_name": {"type": "string"},
                    "version": {"type": "integer"},
                    "area_name": {"type": "string", "nullable": True},
                    "elder_name": {"type": "string", "nullable": True},
                    "elder_id_number": {"type": "string", "nullable": True, "description": "已脱敏 / masked"},
                    "overdue": {"type": "boolean"},
                    "next_due_at": {"type": "string", "format": "date-time", "nullable": True},
                },
            },
        ]
    },
    "Dashboard": {
        "type": "object",
        "description": "统计看板各项数据；比率为字符串形式的小数（1 = 100%） / rates as decimal strings",
        "properties": {
            "area": {"type": "string"},
            "area_name": {"type": "string"},
            "month": {"type": "string"},
            "open_cases": {"type": "array", "items": {"type": "object"}},
            "overdue": {"type": "array", "items": {"type": "object"}},
            "visit_rates": {"type": "object"},
            "waitlist": {"type": "array", "items": {"type": "object"}},
            "services": {"type": "array", "items": {"type": "object"}},
            "adaptation": {"type": "object"},
            "assessments": {"type": "object"},
            "institutional_support_rate": {"type": "string", "nullable": True},
            "occupancy_rate": {"type": "string", "nullable": True},
            "targets": {"type": "object", "additionalProperties": {"type": "string"}},
        },
    },
    "ElderInput": {
        "type": "object",
        "required": ["name", "id_number", "hukou_type", "residence_area_code", "living_arrangement"],
        "properties": {
            "name": {"type": "string"},
            "id_number": {"type": "string"},
            "phone": {"type": "string"},
            "hukou_type": {"type": "string", "enum": ["rural", "urban"]},
            "hukou_area_code": {"type": "string"},
            "residence_area_code": {"type": "string"},
            "address": {"type": "string"},
            "living_arrangement": {
                "type": "string",
                "enum": ["living_alone", "with_spouse", "with_children", "institution", "other"],
            },
            "dibao": {"type": "boolean"},
            "near_dibao": {"type": "boolean"},
            "tekun": {"type": "boolean"},
        },
        "additionalProperties": True,
    },
    "ProcessList": {
        "type": "object",
        "properties": {
            "items": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "key": {"type": "string"},
                        "name": {"type": "string"},
                        "version": {"type": "integer"},
                        "deployed_at": {"type": "string", "format": "date-time"},
                    },
                },
            }
        },
    },
}


def openapi_path(rule: str) -> str:
    """A Flask rule as an OpenAPI path: /tasks/<task_id> -> /api/tasks/{task_id}."""
    return "/api" + _PARAM.sub(lambda m: "{" + m.group(2) + "}", rule)


def document(operations) -> dict:
    paths: dict[str, dict] = {}
    for op in operations:
        params = [
            {
                "name": name,
                "in": "path",
                "required": True,
                "schema": {"type": "integer" if conv == "int" else "string"},
            }
            for conv, name in _PARAM.findall(op.rule)
        ]
        params += [{"in": "query", "required": False, **q} for q in op.query]
        responses = {
            str(op.ok): {
                "description": "成功 / OK",
                "content": {
                    op.media_type: {
                        "schema": {"$ref": f"#/components/schemas/{op.response}"}
                        if op.response
                        else {"type": "object"}
                        if op.media_type == "application/json"
                        else {"type": "string", "format": "binary"}
                    }
                },
            }
        }
        for code in op.errors:
            responses[str(code)] = {
                "description": _STATUS_TEXT.get(code, ""),
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
            }
            if code == 503:
                responses[str(code)]["headers"] = {
                    "Retry-After": {"description": "秒 / seconds", "schema": {"type": "integer"}}
                }
        entry = {"operationId": op.endpoint, "summary": op.summary, "tags": [op.tag], "responses": responses}
        if params:
            entry["parameters"] = params
        if op.body:
            entry["requestBody"] = {
                "required": True,
                "content": {op.body_media_type: {"schema": {"$ref": f"#/components/schemas/{op.body}"}}},
            }
        if not op.auth:
            entry["security"] = []
        paths.setdefault(openapi_path(op.rule), {})[op.method.lower()] = entry
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "县级基本养老服务业务流程系统 API",
            "version": "1.0",
            "description": "Bearer 令牌由 POST /api/login 获取。错误均为 {message, field_errors}，message 为中文。",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": SCHEMAS,
        },
    }
