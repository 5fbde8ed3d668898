"""A process owner's draft of a process: its files (diagram, decision tables, forms) edited in the browser,
kept on the server as they are typed (nothing lost when the browser closes), checked as they change, and
live only once deployed as a new version.

One draft per process and owner: two owners editing one process each have their own; each save carries the
revision it was made on, so a save from a stale page (another tab) is refused instead of overwriting.
"""

from __future__ import annotations

import json
import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import clock, engine, versions
from .engine import Problem
from .errors import Conflict, NotFound, ValidationFailed
from .models import ProcessDraft, ProcessVersion, User
from .models.base import is_row_id

MAX_FILE_BYTES = 2 * 1024 * 1024
MAX_DRAFT_BYTES = 20 * 1024 * 1024
_PATH = re.compile(r"^[\w\u4e00-\u9fff][\w\u4e00-\u9fff.\- ]*(/[\w\u4e00-\u9fff][\w\u4e00-\u9fff.\- ]*)*$")
_KEY = re.compile(r"^[a-z][a-z0-9_]{1,60}$")

NEW_PROCESS = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:bpmndi="http://www.omg.org/spec/BPMN/20100524/DI" xmlns:dc="http://www.omg.org/spec/DD/20100524/DC"
    xmlns:di="http://www.omg.org/spec/DD/20100524/DI"
    xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" id="{key}_definitions"
    targetNamespace="http://bpmn.io/schema/bpmn">
  <bpmn:process id="{key}" name="{name}" isExecutable="true">
    <bpmn:startEvent id="start" name="开始"><bpmn:outgoing>to_handle</bpmn:outgoing></bpmn:startEvent>
    <bpmn:userTask id="handle" name="办理">
      <bpmn:extensionElements><spiffworkflow:properties>
        <spiffworkflow:property name="formJsonSchemaFilename" value="handle.json" />
      </spiffworkflow:properties></bpmn:extensionElements>
      <bpmn:incoming>to_handle</bpmn:incoming><bpmn:outgoing>to_end</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:endEvent id="end" name="结束"><bpmn:incoming>to_end</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="to_handle" sourceRef="start" targetRef="handle" />
    <bpmn:sequenceFlow id="to_end" sourceRef="handle" targetRef="end" />
  </bpmn:process>
  <bpmndi:BPMNDiagram id="{key}_diagram"><bpmndi:BPMNPlane id="{key}_plane" bpmnElement="{key}">
    <bpmndi:BPMNShape id="start_di" bpmnElement="start"><dc:Bounds x="152" y="102" width="36" height="36" /></bpmndi:BPMNShape>
    <bpmndi:BPMNShape id="handle_di" bpmnElement="handle"><dc:Bounds x="240" y="80" width="100" height="80" /></bpmndi:BPMNShape>
    <bpmndi:BPMNShape id="end_di" bpmnElement="end"><dc:Bounds x="392" y="102" width="36" height="36" /></bpmndi:BPMNShape>
    <bpmndi:BPMNEdge id="to_handle_di" bpmnElement="to_handle"><di:waypoint x="188" y="120" /><di:waypoint x="240" y="120" /></bpmndi:BPMNEdge>
    <bpmndi:BPMNEdge id="to_end_di" bpmnElement="to_end"><di:waypoint x="340" y="120" /><di:waypoint x="392" y="120" /></bpmndi:BPMNEdge>
  </bpmndi:BPMNPlane></bpmndi:BPMNDiagram>
</bpmn:definitions>
"""
NEW_FORM = {
    "title": "办理",
    "type": "object",
    "properties": {"note": {"title": "办理意见", "type": "string"}},
}


def files_of(draft: ProcessDraft) -> dict[str, str]:
    return json.loads(draft.files)


def open_draft(session: Session, actor: User, key: str, *, name: str | None = None) -> ProcessDraft:
    """The actor's draft of a process: as they left it, or a new one from the latest version (or, for a
    process not deployed yet, a small diagram to start from)."""
    versions.require_editor(actor)
    draft = session.scalar(
        select(ProcessDraft).where(ProcessDraft.process_key == key, ProcessDraft.owner_id == actor.id)
    )
    if draft is not None:
        return draft
    latest = session.scalar(
        select(ProcessVersion)
        .where(ProcessVersion.process_key == key)
        .order_by(ProcessVersion.version.desc())
        .limit(1)
    )
    if latest is not None:
        files = json.loads(
            session.scalar(select(ProcessVersion.sources).where(ProcessVersion.id == latest.id))
        )
    else:
        if not _KEY.match(key or ""):
            raise ValidationFailed(
                "流程标识只能用小写英文字母、数字和下划线，以字母开头（如 meal_aid）",
                field_errors={"key": "如 meal_aid"},
            )
        title = (name or "").strip() or key
        files = {
            f"{key}.bpmn": NEW_PROCESS.format(key=key, name=_xml_text(title)),
            "forms/handle.json": json.dumps(NEW_FORM, ensure_ascii=False, indent=2) + "\n",
        }
    now = clock.now()
    draft = ProcessDraft(
        process_key=key,
        owner_id=actor.id,
        base_version_id=latest.id if latest is not None else None,
        files=json.dumps(files, ensure_ascii=False),
        revision=1,
        created_at=now,
        updated_at=now,
    )
    session.add(draft)
    session.flush()
    return draft


def _xml_text(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def get_draft(session: Session, actor: User, draft_id: int) -> ProcessDraft:
    versions.require_editor(actor)
    draft = session.get(ProcessDraft, draft_id) if is_row_id(draft_id) else None
    if draft is None or draft.owner_id != actor.id:
        raise NotFound("草稿不存在")
    return draft


def save_files(
    session: Session, actor: User, draft_id: int, changes: dict[str, str | None], revision: int
) -> ProcessDraft:
    """Save changed files (None removes one) on top of `revision`; a save from a stale page is refused."""
    draft = get_draft(session, actor, draft_id)
    if revision != draft.revision:
        raise Conflict("草稿已在其他窗口中修改：请刷新页面后再编辑（以免覆盖那边的修改）")
    files = files_of(draft)
    for path, text in changes.items():
        path = _clean_path(path)
        if text is None:
            files.pop(path, None)
            continue
        if len(text.encode("utf-8")) > MAX_FILE_BYTES:
            raise ValidationFailed(f"文件 {path} 超过 2 MB", field_errors={path: "文件过大"})
        files[path] = text
    if sum(len(t.encode("utf-8")) for t in files.values()) > MAX_DRAFT_BYTES:
        raise ValidationFailed("草稿的文件合计超过 20 MB")
    draft.files = json.dumps(files, ensure_ascii=False)
    draft.revision += 1
    draft.updated_at = clock.now()
    session.flush()
    return draft


def _clean_path(path: str) -> str:
    path = (path or "").replace("\\", "/").strip().strip("/")
    if (
        not _PATH.match(path)
        or ".." in path.split("/")
        or not path.lower().endswith(versions.DEPLOYABLE_SUFFIXES)
    ):
        raise ValidationFailed(
            f"文件名“{path}”不可用：只能是 .bpmn、.dmn 或 .json 文件，不含“..”",
            field_errors={"path": "文件名不可用"},
        )
    return path


def key_of_bundle(files: dict[str, bytes]) -> str:
    """The process an uploaded bundle holds: the executable process of its first BPMN file that declares
    one (a bundle with a main diagram and the diagrams it calls names the main one first by path)."""
    found = engine.main_processes(files)
    if found:
        return found[0]
    raise ValidationFailed(
        '导入的文件中没有可执行的流程（isExecutable="true" 的 process）', field_errors={"files": "没有流程"}
    )


def import_files(
    session: Session,
    actor: User,
    draft_id: int,
    files: dict[str, bytes],
    revision: int,
    *,
    replace: bool = False,
) -> ProcessDraft:
    """Put uploaded files (or a bundle's) into the draft, replacing those of the same name (or, with
    `replace`, all of the draft's files: a bundle imported as a whole)."""
    texts = {}
    for name, content in files.items():
        try:
            texts[name] = content.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ValidationFailed(
                f"文件 {name} 不是 UTF-8 编码的文本", field_errors={name: "编码不是 UTF-8"}
            ) from exc
    if replace:
        texts = {**{path: None for path in files_of(get_draft(session, actor, draft_id))}, **texts}
    return save_files(session, actor, draft_id, texts, revision)


def check(session: Session, actor: User, draft_id: int) -> list[Problem]:
    """Every problem of the draft as it stands (errors block deploying it, warnings do not)."""
    return versions.check_bundle(files_of(get_draft(session, actor, draft_id)))


def deploy(
    session: Session, actor: User, draft_id: int, *, comment: str, channel: str = "web"
) -> list[versions.Deployed]:
    """Deploy the draft as a new version (refused, with the report, while it has errors); the draft goes."""
    draft = get_draft(session, actor, draft_id)
    deployed = versions.deploy(session, actor, files_of(draft), comment=comment, channel=channel)
    session.delete(draft)
    session.flush()
    return deployed


def discard(session: Session, actor: User, draft_id: int) -> None:
    session.delete(get_draft(session, actor, draft_id))
    session.flush()
