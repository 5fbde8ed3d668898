"""The process owners' studio: processes and their versions (everyone may look), editing a draft of a
process in the browser, checking it as it changes, deploying it as a new version, comparing versions, and
moving running cases from one version to another (process owners and admins)."""

from __future__ import annotations

from flask import Blueprint, Response, abort, flash, jsonify, redirect, render_template, request, url_for
from sqlalchemy import select

from workflows import case_moves, process_drafts, registry, starting, version_diff, versions
from workflows.elders import ROLE_LABELS
from workflows.engine import DeployError
from workflows.errors import DomainError, ValidationFailed
from workflows.models import Role, User

from . import forms
from .auth import me
from .database import db, undo
from .i18n import _

bp = Blueprint("studio", __name__)
MAX_UPLOAD = 20 * 1024 * 1024


def _can_edit() -> bool:
    return me().is_active and me().role in versions.EDITOR_ROLES


def _user_names(session, ids) -> dict[int, str]:
    ids = {i for i in ids if i}
    if not ids:
        return {}
    return dict(session.execute(select(User.id, User.display_name).where(User.id.in_(ids))).all())


def problems_json(problems) -> list[dict]:
    return [p.as_dict() for p in problems]


# --------------------------------------------------------------------------------------------------
# Looking: processes, versions, diagrams, forms, tables, the difference of two versions


@bp.get("/processes")
def process_list():
    session = db()
    latest = versions.list_latest(session)
    running = {
        v.process_key: sum(case_moves.counts_by_version(session, v.process_key).values()) for v in latest
    }
    return render_template(
        "studio/list.html", processes=latest, running=running, known=registry.current(), can_edit=_can_edit()
    )


def _chosen(all_versions, number):
    if number is None or number == "":
        return all_versions[0]
    for version in all_versions:
        if str(version.version) == str(number):
            return version
    abort(404)


@bp.get("/processes/<key>")
def process_page(key: str):
    session = db()
    all_versions = versions.versions_of(session, key)
    shown = _chosen(all_versions, request.args.get("version"))
    sources = versions.sources_of(session, shown)
    declared = registry.current().get(key)
    startable = (
        declared is None or (declared.starter is None and not declared.system_started)
    ) and me().role in (starting.START_ROLES | {Role.PROCESS_OWNER})
    return render_template(
        "studio/process.html",
        key=key,
        versions=all_versions,
        shown=shown,
        counts=case_moves.counts_by_version(session, key),
        names=_user_names(session, {v.deployed_by for v in all_versions}),
        files=sorted(sources),
        declared=declared,
        expectations=registry.current().expectations(key),
        can_edit=_can_edit(),
        startable=startable,
    )


@bp.get("/processes/<key>/versions/<int:number>/diagram.json")
def version_diagram(key: str, number: int):
    session = db()
    version = versions.get_version(session, key, number)
    sources = versions.sources_of(session, version)
    return {"xml": _main_diagram(sources, key), "completed": [], "current": []}


def _main_diagram(sources: dict[str, str], key: str) -> str:
    bpmn = {p: t for p, t in sources.items() if p.endswith(".bpmn")}
    return next((t for t in bpmn.values() if f'id="{key}"' in t), next(iter(bpmn.values()), ""))


@bp.get("/processes/<key>/versions/<int:number>/files/<path:path>")
def version_file(key: str, number: int, path: str):
    session = db()
    sources = versions.sources_of(session, versions.get_version(session, key, number))
    if path not in sources:
        abort(404)
    kind = "application/json" if path.endswith(".json") else "application/xml"
    return Response(sources[path], mimetype=kind, headers={"Content-Disposition": "inline"})


@bp.get("/processes/<key>/versions/<int:number>/export.zip")
def export_version(key: str, number: int):
    session = db()
    version = versions.get_version(session, key, number)
    return Response(
        versions.export_zip(session, version),
        mimetype="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{key}-v{number}.zip"'},
    )


@bp.get("/processes/<key>/diff")
def diff_page(key: str):
    session = db()
    all_versions = versions.versions_of(session, key)
    new = _chosen(all_versions, request.args.get("to"))
    older = [v for v in all_versions if v.version < new.version]
    old = _chosen(all_versions, request.args.get("from") or (older[0].version if older else new.version))
    old_sources, new_sources = versions.sources_of(session, old), versions.sources_of(session, new)
    return render_template(
        "studio/diff.html",
        key=key,
        versions=all_versions,
        old=old,
        new=new,
        file_changes=version_diff.file_changes(old_sources, new_sources),
        old_xml=_main_diagram(old_sources, key),
        new_xml=_main_diagram(new_sources, key),
    )


# --------------------------------------------------------------------------------------------------
# Editing a draft (process owners and admins)


@bp.get("/processes/<key>/edit")
def edit_page(key: str):
    session = db()
    draft = process_drafts.open_draft(session, me(), key, name=request.args.get("name"))
    return render_template(
        "studio/edit.html",
        key=key,
        draft=draft,
        roles=[{"value": r.value, "label": ROLE_LABELS.get(r, r.value)} for r in Role],
    )


@bp.post("/processes/new")
def new_process():
    key = (request.form.get("key") or "").strip()
    name = (request.form.get("name") or "").strip()
    try:
        if any(v.process_key == key for v in versions.list_latest(db())):
            raise ValidationFailed(_("流程 {key} 已存在：请在其页面上编辑", key=key))
        process_drafts.open_draft(db(), me(), key, name=name)
    except DomainError as exc:
        undo()
        flash(exc.message, "error")
        return redirect(url_for("studio.process_list"))
    return redirect(url_for("studio.edit_page", key=key))


@bp.post("/processes/import")
def import_bundle():
    """Files or a zip from another tool, as a draft of the process they hold (checked there, then deployed)."""
    try:
        files = uploaded_bundle()
        key = process_drafts.key_of_bundle(files)
        draft = process_drafts.open_draft(db(), me(), key)
        process_drafts.import_files(db(), me(), draft.id, files, draft.revision, replace=True)
    except DomainError as exc:
        undo()
        flash(exc.message, "error")
        return redirect(url_for("studio.process_list"))
    flash(_("已导入为 {key} 的草稿：检查无误后部署", key=key), "success")
    return redirect(url_for("studio.edit_page", key=key))


def _draft_json(draft) -> dict:
    return {
        "id": draft.id,
        "key": draft.process_key,
        "revision": draft.revision,
        "files": process_drafts.files_of(draft),
    }


@bp.get("/studio/drafts/<int:draft_id>")
def draft_json(draft_id: int):
    return _draft_json(process_drafts.get_draft(db(), me(), draft_id))


@bp.put("/studio/drafts/<int:draft_id>")
def save_draft(draft_id: int):
    payload = request.get_json(silent=True) or {}
    changes = payload.get("files")
    if not isinstance(changes, dict) or not all(v is None or isinstance(v, str) for v in changes.values()):
        raise ValidationFailed(_("files 应为 {文件名: 文本或 null}"))
    draft = process_drafts.save_files(db(), me(), draft_id, changes, int(payload.get("revision") or 0))
    return {"revision": draft.revision}


@bp.post("/studio/drafts/<int:draft_id>/check")
def check_draft(draft_id: int):
    problems = process_drafts.check(db(), me(), draft_id)
    return {"problems": problems_json(problems), "errors": sum(p.severity == "error" for p in problems)}


@bp.post("/studio/drafts/<int:draft_id>/import")
def import_into_draft(draft_id: int):
    files = uploaded_bundle()
    draft = process_drafts.import_files(db(), me(), draft_id, files, int(request.form.get("revision") or 0))
    return _draft_json(draft)


def uploaded_bundle() -> dict[str, bytes]:
    """Files posted as `files` (several .bpmn/.dmn/.json, or one .zip) as one bundle."""
    uploads = [f for f in request.files.getlist("files") if f and f.filename]
    if not uploads:
        raise ValidationFailed(_("请选择要导入的文件"), field_errors={"files": _("请选择文件")})
    bundle: dict[str, bytes] = {}
    for upload in uploads:
        data = upload.read(MAX_UPLOAD + 1)
        if len(data) > MAX_UPLOAD:
            raise ValidationFailed(_("文件过大（上限 20 MB）"), field_errors={"files": _("文件过大")})
        name = upload.filename.replace("\\", "/").split("/")[-1]
        if name.lower().endswith(".zip"):
            bundle.update(versions.read_zip(data))
        elif name.lower().endswith(versions.DEPLOYABLE_SUFFIXES):
            bundle[name if not name.endswith(".json") else f"forms/{name}"] = data
        else:
            raise ValidationFailed(
                _("不支持的文件 {name}：只接受 .bpmn、.dmn、.json 或 .zip", name=name),
                field_errors={"files": name},
            )
    return bundle


@bp.post("/studio/drafts/<int:draft_id>/deploy")
def deploy_draft(draft_id: int):
    payload = request.get_json(silent=True) or {}
    try:
        deployed = process_drafts.deploy(db(), me(), draft_id, comment=str(payload.get("comment") or ""))
    except DeployError as exc:
        undo()
        return jsonify(message=_("流程有错误，未部署：请先修正"), problems=problems_json(exc.problems)), 422
    created = [d for d in deployed if d.created]
    return {
        "deployed": [{"key": d.key, "version": d.version, "created": d.created} for d in deployed],
        "warnings": problems_json({str(w): w for d in deployed for w in d.warnings}.values()),
        "next": url_for("studio.process_page", key=created[0].key if created else deployed[0].key),
    }


@bp.post("/studio/drafts/<int:draft_id>/discard")
def discard_draft(draft_id: int):
    draft = process_drafts.get_draft(db(), me(), draft_id)
    key = draft.process_key
    process_drafts.discard(db(), me(), draft_id)
    flash(_("已放弃草稿"), "info")
    return redirect(
        url_for("studio.process_page", key=key)
        if versions.list_latest(db())
        else url_for("studio.process_list")
    )


@bp.post("/studio/forms/preview")
def form_preview():
    """A form file rendered by the task pages' own macros (the editor's live preview)."""
    versions.require_editor(me())
    payload = request.get_json(silent=True) or {}
    schema = payload.get("schema")
    if not isinstance(schema, dict):
        return jsonify(error=_("表单应为 JSON 对象")), 422
    try:
        fields = forms.build_fields(schema, payload.get("ui") or {}, {}, {})
    except Exception as exc:  # noqa: BLE001 - a half-typed schema: say what the macros could not read
        return jsonify(error=_("无法预览：{reason}", reason=str(exc)[:200])), 422
    return render_template("studio/_preview.html", schema=schema, fields=fields)


# --------------------------------------------------------------------------------------------------
# Moving running cases to another version


PLAN_SHOWN = 500  # cases a dry run lists on the page; "all" moves every one that can, however many


@bp.get("/processes/<key>/migrate")
def migrate_page(key: str):
    session = db()
    versions.require_editor(me())
    all_versions = versions.versions_of(session, key)
    target = _chosen(all_versions, request.args.get("to"))
    from_version = request.args.get("from", type=int)
    plan, more = None, False
    if request.args.get("to"):
        by_number = {v.version: v.id for v in all_versions}
        candidates = [
            c.id
            for c in case_moves.running_cases(session, me(), key, not_on=target.id)
            if from_version is None or c.process_version_id == by_number.get(from_version)
        ]
        more = len(candidates) > PLAN_SHOWN
        plan = (
            case_moves.dry_run(session, me(), key, target.version, candidates[:PLAN_SHOWN])
            if candidates
            else []
        )
    batch_id = request.args.get("batch", type=int)
    return render_template(
        "studio/migrate.html",
        key=key,
        versions=all_versions,
        target=target,
        from_version=from_version,
        plan=plan,
        more=more,
        counts=case_moves.counts_by_version(session, key),
        batch=case_moves.get_batch(session, me(), batch_id) if batch_id else None,
        progress=case_moves.batch_progress(session, me(), batch_id) if batch_id else None,
        undoable=case_moves.undoable_moves(session, me(), key),
    )


@bp.post("/processes/<key>/migrate")
def migrate_cases(key: str):
    target = request.form.get("to", type=int) or 0
    chosen = None if request.form.get("scope") == "all" else request.form.getlist("case", type=int)
    try:
        if chosen is not None and not chosen:
            raise ValidationFailed(_("请勾选要迁移的案件"))
        batch = case_moves.request_batch(
            db(), me(), key, target, chosen, comment=request.form.get("comment") or ""
        )
    except DomainError as exc:
        undo()
        flash(exc.message, "error")
        return redirect(url_for("studio.migrate_page", key=key, to=target))
    flash(_("已开始迁移 {n} 个案件", n=batch.total), "success")
    return redirect(url_for("studio.migrate_page", key=key, to=target, batch=batch.id))


@bp.get("/studio/migrations/<int:batch_id>.json")
def migration_progress(batch_id: int):
    return case_moves.batch_progress(db(), me(), batch_id)


@bp.post("/cases/<int:case_id>/move-back")
def move_back(case_id: int):
    migration = case_moves.move_back(db(), me(), case_id, comment=request.form.get("comment") or "")
    flash(_("已撤回案件 #{id} 的迁移", id=case_id), "success")
    key = request.form.get("key") or ""
    if key:
        return redirect(url_for("studio.migrate_page", key=key, to=request.form.get("to") or None))
    return redirect(url_for("cases.case_page", case_id=migration.case_id))


# --------------------------------------------------------------------------------------------------
# Starting a process that is not about an elder


@bp.route("/processes/<key>/start", methods=["GET", "POST"])
def start_process(key: str):
    """Start a case of a process not about an elder: its first step's form when that step is the actor's."""
    session = db()
    version = versions.latest(session, key)
    step = starting.first_step(session, me(), key, None)
    schema = step.form if step and step.for_actor else None
    ui = step.ui_form if step and step.for_actor else None
    values, errors, message = {}, {}, None
    if request.method == "POST":
        values = forms.compact(schema, forms.posted_values(request.form))
        data, errors = forms.parse(schema, values)
        try:
            started = starting.start_without_elder(session, me(), key, data, input_errors=errors)
        except DomainError as exc:
            undo()
            errors, message = exc.field_errors or {"_": exc.message}, exc.message
        else:
            flash(_("已发起：{title}（案件 #{id}）", title=started.case.title, id=started.case.id), "success")
            for new in started.next_tasks:
                if new.role in (None, me().role.value):
                    return redirect(url_for("inbox.task_page", task_id=new.id))
            return redirect(url_for("cases.case_page", case_id=started.case.id))
    return render_template(
        "studio/start.html",
        key=key,
        version=version,
        step=step,
        fields=forms.build_fields(schema, ui, values, errors),
        instructions=forms.render_instructions(step.instructions, {"case_area_code": me().area_code})
        if step
        else "",
        message=message,
    ), (422 if message else 200)
