"""Administration pages (system administrators, inside their own area): users, areas, organisations, the
working-day calendar and the log of changes. Every rule lives in the use cases (`workflows.users`,
`areas`, `organisations`, `calendars`); these views parse forms and show what they answer."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from sqlalchemy import func, select

from workflows import admin_log, areas, calendars, clock, organisations, users
from workflows.errors import DomainError, PermissionDenied, ValidationFailed
from workflows.models import Role, User
from workflows.models.organisations import BED_TYPE_LABELS, BedType, OrganisationKind
from workflows.rules.care import SIX_HELPS

from .auth import me
from .database import db, undo
from .i18n import _, label

bp = Blueprint("admin", __name__, url_prefix="/admin")
# The addresses people try first.
shortcuts = Blueprint("admin_shortcuts", __name__)

ROLES = [role.value for role in Role]


@bp.before_request
def _admins_only():
    users.require_admin(me())


@shortcuts.get("/users")
def users_shortcut():
    return redirect(url_for("admin.user_list"))


@shortcuts.get("/areas")
def areas_shortcut():
    return redirect(url_for("admin.area_list"))


# --------------------------------------------------------------------------------------------------
# Start page


@bp.get("")
def home():
    session = db()
    actor = me()
    inside = User.area_code.startswith(actor.area_code, autoescape=True)
    now = clock.now()
    counts = {
        "users": session.scalar(select(func.count()).select_from(User).where(inside)),
        "disabled": session.scalar(
            select(func.count()).select_from(User).where(inside, User.is_active.is_(False))
        ),
        "locked": session.scalar(
            select(func.count())
            .select_from(User)
            .where(inside, User.locked_until.is_not(None), User.locked_until > now)
        ),
        "must_change": session.scalar(
            select(func.count()).select_from(User).where(inside, User.must_change_password.is_(True))
        ),
        "organisations": len(organisations.list_organisations(session, actor)),
        "areas": len(areas.assignable_areas(session, actor)),
    }
    locked = [u for u in users.list_users(session, actor) if users.is_locked(u)][:20]
    return render_template(
        "admin/home.html",
        counts=counts,
        locked=locked,
        warnings=calendars.warnings(session),
        log=_visible_log(session, actor, limit=12),
    )


# --------------------------------------------------------------------------------------------------
# Users


def _user_form_context(session, actor, **extra) -> dict:
    return {
        "role_options": [(role, label("role", role)) for role in ROLES],
        "area_options": [(a.code, f"{a.code} {a.name}") for a in areas.assignable_areas(session, actor)],
        "organisation_options": [
            (o.id, f"{_(o.kind.label)}：{o.name}") for o in organisations.list_organisations(session, actor)
        ],
        **extra,
    }


@bp.get("/users")
def user_list():
    session = db()
    actor = me()
    q = (request.args.get("q") or "").strip()[:50]
    role = request.args.get("role") or None
    area = request.args.get("area") or None
    organisation = request.args.get("organisation", "")
    found = users.list_users(
        session,
        actor,
        q=q,
        role=role,
        area_code=area,
        organisation_id=int(organisation) if organisation.isdigit() else None,
    )
    return render_template(
        "admin/users.html",
        found=found,
        q=q,
        role=role,
        area=area,
        roles=ROLES,
        areas=areas.assignable_areas(session, actor),
        organisation_names=organisations.organisation_names(session, [u.organisation_id for u in found]),
        now=clock.now(),
    )


def _user_data(form) -> dict:
    organisation = (form.get("organisation_id") or "").strip()
    return {
        "username": (form.get("username") or "").strip(),
        "display_name": (form.get("display_name") or "").strip(),
        "role": form.get("role") or "",
        "area_code": form.get("area_code") or "",
        "organisation_id": int(organisation) if organisation.isdigit() else None,
    }


@bp.route("/users/new", methods=["GET", "POST"])
def user_new():
    session = db()
    actor = me()
    values, errors, message = {}, {}, None
    if request.method == "POST":
        values = _user_data(request.form)
        try:
            issued = users.add_user(session, actor, values)
        except ValidationFailed as exc:
            undo()
            errors, message, status = exc.field_errors or {"_": exc.message}, exc.message, exc.status
        else:
            return _issued_page(issued, _("已添加用户 {name}", name=issued.user.username))
    return render_template(
        "admin/user_new.html",
        **_user_form_context(session, actor, values=values, errors=errors, message=message),
    ), (status if message else 200)


def _issued_page(issued: users.Issued, title: str):
    """A temporary password or a one-time link, shown once (never cached)."""
    link = (
        url_for("account.reset_password", token=issued.reset_token, _external=True)
        if issued.reset_token
        else None
    )
    response = render_template(
        "admin/issued.html", issued=issued, link=link, title=title, hours=users.RESET_LINK_HOURS
    )
    return response, 200, {"Cache-Control": "no-store"}


@bp.route("/users/<int:user_id>", methods=["GET", "POST"])
def user_page(user_id: int):
    session = db()
    actor = me()
    user = users.get_user(session, actor, user_id)
    errors, message = {}, None
    if request.method == "POST":
        data = _user_data(request.form)
        changes = {key: data[key] for key in ("display_name", "role", "area_code", "organisation_id")}
        try:
            users.update_user(session, actor, user.id, changes)
        except ValidationFailed as exc:
            undo()
            errors, message, status = exc.field_errors or {"_": exc.message}, exc.message, exc.status
            user = users.get_user(session, actor, user_id)
        else:
            flash(_("已保存用户 {name}", name=user.username), "success")
            return redirect(url_for("admin.user_page", user_id=user.id))
    return render_template(
        "admin/user.html",
        **_user_form_context(
            session,
            actor,
            user=user,
            errors=errors,
            message=message,
            locked=users.is_locked(user),
            history=admin_log.history(session, subject="user", subject_id=user.id, limit=50),
        ),
    ), (status if message else 200)


@bp.post("/users/<int:user_id>/unlock")
def user_unlock(user_id: int):
    user = users.update_user(db(), me(), user_id, {"unlock": True})
    flash(_("已解除 {name} 的登录锁定", name=user.username), "success")
    return redirect(url_for("admin.user_page", user_id=user_id))


@bp.post("/users/<int:user_id>/active")
def user_active(user_id: int):
    active = request.form.get("active") == "true"
    user = users.update_user(db(), me(), user_id, {"is_active": active})
    flash(
        _("已启用 {name}", name=user.username) if active else _("已停用 {name}", name=user.username),
        "success",
    )
    return redirect(url_for("admin.user_page", user_id=user_id))


@bp.post("/users/<int:user_id>/password")
def user_password(user_id: int):
    how = request.form.get("how") or "temporary"
    issued = users.reset_password(db(), me(), user_id, how)
    return _issued_page(issued, _("已重置 {name} 的密码", name=issued.user.username))


# --------------------------------------------------------------------------------------------------
# Areas


@bp.route("/areas", methods=["GET", "POST"])
def area_list():
    session = db()
    actor = me()
    values, errors, message = {}, {}, None
    if request.method == "POST":
        values = {
            "code": (request.form.get("code") or "").strip(),
            "name": (request.form.get("name") or "").strip(),
        }
        try:
            area = areas.add_area(session, values["code"], values["name"], actor=actor)
        except ValidationFailed as exc:
            undo()
            errors, message, status = exc.field_errors or {"_": exc.message}, exc.message, exc.status
        else:
            flash(_("已添加：{code} {name}", code=area.code, name=area.name), "success")
            return redirect(url_for("admin.area_list") + f"#area-{area.code}")
    return render_template(
        "admin/areas.html",
        tree=areas.area_tree(session, actor),
        values=values,
        errors=errors,
        message=message,
    ), (status if message else 200)


@bp.route("/areas/<code>", methods=["GET", "POST"])
def area_page(code: str):
    session = db()
    actor = me()
    area = areas.get_area(session, actor, code)
    errors, message = {}, None
    if request.method == "POST":
        action = request.form.get("action")
        try:
            if action == "rename":
                areas.rename_area(session, actor, code, request.form.get("name", ""))
                flash(_("已更名"), "success")
            elif action == "retire":
                areas.retire_area(session, actor, code, request.form.get("reason", ""))
                flash(_("已撤销该区划"), "success")
            elif action == "restore":
                areas.restore_area(session, actor, code)
                flash(_("已恢复该区划"), "success")
            else:
                raise ValidationFailed("请求有误")
        except ValidationFailed as exc:
            undo()
            errors, message, status = exc.field_errors or {"_": exc.message}, exc.message, exc.status
            area = areas.get_area(session, actor, code)
        else:
            return redirect(url_for("admin.area_page", code=code))
    return render_template(
        "admin/area.html",
        area=area,
        level=areas.level_label(area),
        in_use=areas.in_use(session, code),
        managed=actor.area_code != area.code,
        errors=errors,
        message=message,
        history=admin_log.history(session, subject="area", subject_id=code, limit=50),
    ), (status if message else 200)


# --------------------------------------------------------------------------------------------------
# Organisations


def _organisation_data(form) -> dict:
    beds = {t.value: (form.get(f"beds.{t.value}") or "0").strip() for t in BedType}
    return {
        "kind": form.get("kind") or "",
        "name": (form.get("name") or "").strip(),
        "area_code": form.get("area_code") or "",
        "address": (form.get("address") or "").strip(),
        "phone": (form.get("phone") or "").strip(),
        "contact": (form.get("contact") or "").strip(),
        "contract_start": (form.get("contract_start") or "").strip() or None,
        "contract_end": (form.get("contract_end") or "").strip() or None,
        "services": form.getlist("services"),
        "service_areas": form.getlist("service_areas"),
        "beds": {k: int(v) if v.isdigit() else v for k, v in beds.items()},
    }


def _organisation_form_context(session, actor, **extra) -> dict:
    choosable = areas.assignable_areas(session, actor)
    return {
        "kinds": list(OrganisationKind),
        "area_options": [(a.code, f"{a.code} {a.name}") for a in choosable],
        "service_area_choices": [a for a in choosable if len(a.code) <= 9],
        "services": SIX_HELPS,
        "bed_types": [(t.value, BED_TYPE_LABELS[t]) for t in BedType],
        **extra,
    }


@bp.get("/organisations")
def organisation_list():
    session = db()
    actor = me()
    found = organisations.list_organisations(session, actor, request.args.get("kind") or None)
    return render_template(
        "admin/organisations.html",
        found=[organisations.view(session, actor, o.id) for o in found],
        kind=request.args.get("kind"),
        today=clock.today(),
    )


@bp.route("/organisations/new", methods=["GET", "POST"])
def organisation_new():
    session = db()
    actor = me()
    kind = request.values.get("kind") or OrganisationKind.PROVIDER.value
    values, errors, message = {"kind": kind}, {}, None
    if request.method == "POST":
        values = _organisation_data(request.form)
        try:
            made = organisations.create_organisation(session, actor, values)
        except ValidationFailed as exc:
            undo()
            errors, message, status = exc.field_errors or {"_": exc.message}, exc.message, exc.status
        else:
            flash(_("已登记：{name}", name=made.name), "success")
            return redirect(url_for("admin.organisation_page", organisation_id=made.id))
    return render_template(
        "admin/organisation_form.html",
        **_organisation_form_context(
            session, actor, values=values, errors=errors, message=message, shown=None
        ),
    ), (status if message else 200)


@bp.route("/organisations/<int:organisation_id>", methods=["GET", "POST"])
def organisation_page(organisation_id: int):
    session = db()
    actor = me()
    shown = organisations.view(session, actor, organisation_id)
    errors, message = {}, None
    if request.method == "POST":
        values = _organisation_data(request.form)
        values["is_active"] = request.form.get("is_active") == "true"
        values.pop("kind")
        if shown.organisation.kind == OrganisationKind.FACILITY:
            for key in ("contract_start", "contract_end", "services", "service_areas"):
                values.pop(key)
        else:
            values.pop("beds")
        try:
            organisations.update_organisation(session, actor, organisation_id, values)
        except ValidationFailed as exc:
            undo()
            errors, message, status = exc.field_errors or {"_": exc.message}, exc.message, exc.status
            shown = organisations.view(session, actor, organisation_id)
        else:
            flash(_("已保存：{name}", name=shown.organisation.name), "success")
            return redirect(url_for("admin.organisation_page", organisation_id=organisation_id))
    o = shown.organisation
    values = {
        "kind": o.kind.value,
        "name": o.name,
        "area_code": o.area_code,
        "address": o.address,
        "phone": o.phone,
        "contact": o.contact,
        "contract_start": o.contract_start.isoformat() if o.contract_start else "",
        "contract_end": o.contract_end.isoformat() if o.contract_end else "",
        "services": o.service_list(),
        "service_areas": [a.code for a in shown.service_areas],
        "beds": {t.value: n for t, n in shown.beds.items()},
        "is_active": o.is_active,
    }
    if message:
        values.update({k: v for k, v in _organisation_data(request.form).items() if k != "kind"})
    return render_template(
        "admin/organisation_form.html",
        **_organisation_form_context(
            session,
            actor,
            values=values,
            errors=errors,
            message=message,
            shown=shown,
            history=admin_log.history(session, subject="organisation", subject_id=organisation_id, limit=50),
        ),
    ), (status if message else 200)


# --------------------------------------------------------------------------------------------------
# The working-day calendar


def _county_only():
    if len(me().area_code) > 6:
        raise PermissionDenied("工作日历由县级系统管理员维护")


@bp.get("/calendar")
def calendar_overview():
    session = db()
    return render_template(
        "admin/calendar.html",
        years=calendars.overview(session),
        warnings=calendars.warnings(session),
        can_edit=len(me().area_code) <= 6,
    )


@bp.route("/calendar/<int:year>", methods=["GET", "POST"])
def calendar_year(year: int):
    session = db()
    if not calendars.FIRST_YEAR <= year <= calendars.LAST_YEAR:
        abort(404)
    source, days = calendars.year_days(session, year)
    text = calendars.format_days(days)
    notice = ""
    errors, message, entered = {}, None, None
    if request.method == "POST":
        _county_only()
        upload = request.files.get("file")
        text = request.form.get("days") or ""
        if upload and upload.filename:
            raw = upload.read(200_000)
            try:
                text = raw.decode("utf-8-sig")
            except UnicodeDecodeError:
                try:
                    text = raw.decode("gb18030")
                except UnicodeDecodeError:
                    text = ""
                    errors = {"file": _("文件应为 UTF-8 或 GBK 编码的文本")}
        notice = (request.form.get("notice") or "").strip()
        try:
            if errors:
                raise ValidationFailed(errors["file"], field_errors=errors)
            entered = calendars.enter_year(session, me(), year, text, notice=notice)
        except ValidationFailed as exc:
            undo()
            errors, message, status = exc.field_errors or {"_": exc.message}, exc.message, exc.status
        else:
            source, days = "county", entered.days
    else:
        row = next((y for y in calendars.overview(session) if y.year == year), None)
        notice = row.notice if row else ""
    return render_template(
        "admin/calendar_year.html",
        year=year,
        source=source,
        days=days,
        text=text,
        notice=notice,
        errors=errors,
        message=message,
        entered=entered,
        can_edit=len(me().area_code) <= 6,
        history=admin_log.history(session, subject="calendar", subject_id=year, limit=20),
        weekday=lambda d: "一二三四五六日"[d.weekday()],
    ), (status if message else 200)


# --------------------------------------------------------------------------------------------------
# The log


def _visible_log(session, actor: User, limit: int = 200) -> list[admin_log.Entry]:
    """The changes of records inside the administrator's area (the calendar: county administrators)."""
    entries = admin_log.history(session, limit=limit * 3)
    inside = set()
    for entry in entries:
        if entry.subject == "user":
            user = session.get(User, int(entry.subject_id)) if entry.subject_id.isdigit() else None
            visible = user is not None and users.manages(actor, user.area_code)
        elif entry.subject == "area":
            visible = entry.subject_id.startswith(actor.area_code)
        elif entry.subject == "organisation":
            try:
                organisations.get_organisation(session, actor, int(entry.subject_id))
                visible = True
            except (DomainError, ValueError):
                visible = False
        else:
            visible = len(actor.area_code) <= 6
        if visible:
            inside.add(id(entry))
    return [e for e in entries if id(e) in inside][:limit]


@bp.get("/log")
def log():
    return render_template(
        "admin/log.html", entries=_visible_log(db(), me()), subjects=admin_log.SUBJECT_LABELS
    )
