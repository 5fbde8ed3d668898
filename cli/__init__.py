"""The `eldercare` command: set up, serve, work in the background, deploy, import, match, benchmark.

It sits above the web app and the domain (it starts both) and is not part of either; the benchmarks are
programs of their own (`python -m bench`), run as such.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
from gunicorn.app.base import BaseApplication
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError

from webapp import create_app
from workflows import (
    areas,
    calendars,
    cases,
    clock,
    config,
    matching,
    processes,
    roster,
    schema,
    users,
    versions,
)
from workflows import demo as demo_data
from workflows import worker as background_worker
from workflows.db import make_engine, session_factory
from workflows.engine import DeployError
from workflows.errors import DomainError
from workflows.models import User
from workflows.models.base import ROW_ID_MAX

from . import backup, lifetime
from .archive import archive as archive_command


def _sessions():
    engine = make_engine()
    make = session_factory(engine)
    # Deadlines counted here (a message moving a case, an import) use the years the county entered.
    with contextlib.suppress(DBAPIError), make() as session:
        calendars.refresh(session)
    return engine, make


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="详细日志 / verbose logging")
def main(verbose: bool) -> None:
    """县级基本养老服务业务流程系统 (elder-care case workflow)."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(message)s"
    )
    processes.install()
    clock.use_for_process(clock.ShiftedClock(path) if (path := config.clock_file()) else None)


@main.command("init-db")
@click.option("--demo", is_flag=True, help="载入演示数据（县、乡镇、各角色用户、老年人、各状态案件）")
def init_db(demo: bool) -> None:
    """Create or upgrade the database and deploy the shipped processes."""
    engine, make = _sessions()
    schema.upgrade(engine)
    with make.begin() as session:
        deployed = versions.deploy(session, None, versions.read_bundle(config.bpmn_dir()))
    for d in deployed:
        click.echo(f"流程 {d.key} 第{d.version}版" + ("（新部署）" if d.created else "（已是最新）"))
    if demo:
        password = os.environ.get("ELDERCARE_DEMO_PASSWORD", "eldercare2026")
        with make.begin() as session:
            summary = demo_data.load_demo(session, password)
        _print_logins(summary, password)


def _print_logins(summary: dict, password: str) -> None:
    click.echo("")
    click.echo(f"演示账号（密码均为 {password}）/ demo logins (password: {password}):")
    for login in summary.get("logins", []):
        click.echo(
            f"  {login['username']:<18} {login['role']:<18} {login.get('display_name', '')}  {login.get('area', '')}"
        )
    counts = summary.get("counts", {})
    if counts:
        click.echo("数据 / data: " + ", ".join(f"{k}={v}" for k, v in counts.items()))


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--workers", default=2, show_default=True, type=int, help="web worker processes")
@click.option("--no-worker", is_flag=True, help="不启动后台任务进程 / do not start the background worker")
def serve(host: str, port: int, workers: int, no_worker: bool) -> None:
    """Serve the web app (gunicorn) with the background worker beside it (started again if it dies)."""
    background = None
    if not no_worker:
        background = lifetime.Supervised(
            [sys.executable, "-m", "cli", "worker", "--parent", str(os.getpid())]
        )
    try:

        class _App(BaseApplication):
            def load_config(self):
                self.cfg.set("bind", f"{host}:{port}")
                self.cfg.set("workers", workers)
                self.cfg.set("accesslog", "-")

            def load(self):
                return create_app()

        click.echo(f"访问 / open http://{host}:{port}/")
        _App().run()
    finally:
        if background is not None:
            background.stop()


@main.command()
@click.option("--once", is_flag=True, help="只运行一轮 / run one round and exit")
@click.option("--interval", default=5.0, show_default=True, help="seconds between rounds")
@click.option("--parent", type=int, hidden=True, help="end when this process (serve) ends")
def worker(once: bool, interval: float, parent: int | None) -> None:
    """Run due timers, outbound messages and periodic cases (restart-safe).

    On SQLite one worker per database works at a time (a second waits for the first to stop); on
    PostgreSQL several share the work.
    """
    if parent is not None:
        lifetime.die_with_parent(parent)
    engine, make = _sessions()
    if once:
        with background_worker.sole_worker(engine, wait=False) as sole:
            if not sole:
                raise click.ClickException("另一个后台任务进程正在处理此数据库 / another worker is running")
            click.echo(json.dumps(background_worker.run_once(make), ensure_ascii=False))
        return
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))

    def should_stop() -> bool:
        return bool(stopping) or (parent is not None and lifetime.parent_gone(parent))

    with (
        contextlib.suppress(KeyboardInterrupt),
        background_worker.sole_worker(engine, wait=True, should_stop=should_stop) as sole,
    ):
        if sole:
            background_worker.run_forever(make, interval=interval, should_stop=should_stop)


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
def deploy(paths: tuple[Path, ...]) -> None:
    """Deploy BPMN/DMN/form files (or folders of them) as one bundle."""
    files: dict[str, bytes] = {}
    for path in paths:
        for name, text in versions.read_bundle(path).items():
            files[str(path / name) if path.is_dir() else name] = text
    _, make = _sessions()
    try:
        with make.begin() as session:
            deployed = versions.deploy(session, None, files)
    except DeployError as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)
    for d in deployed:
        click.echo(f"{d.key}: 第{d.version}版" + ("（新部署）" if d.created else "（内容未变，未新建版本）"))
    for warning in {str(w): w for d in deployed for w in d.warnings}:
        click.echo(f"提示：{warning}", err=True)


# An id typed on the command line: a row's id or nothing (a larger number would fail in the driver).
_ROW_ID = click.IntRange(1, ROW_ID_MAX)


@main.command()
@click.argument("name")
@click.option("--payload", default="{}", help="JSON 对象 / JSON object")
@click.option("--elder", "elder_id", type=_ROW_ID, help="只送达该老年人的案件 / only this elder's cases")
@click.option("--case", "case_id", type=_ROW_ID, help="只送达该案件 / only this case")
@click.option("--signal", "is_signal", is_flag=True, help="作为信号而非消息 / deliver as a signal")
def message(name: str, payload: str, elder_id: int | None, case_id: int | None, is_signal: bool) -> None:
    """Deliver a named message (e.g. a bed became free, an elder died) to the cases waiting for it."""
    try:
        data = json.loads(payload)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"不是有效的 JSON：{exc.msg}", param_hint="--payload") from exc
    if not isinstance(data, dict):
        raise click.BadParameter('应为 JSON 对象，如 \'{"bed": "A-1"}\'', param_hint="--payload")
    _, make = _sessions()
    with make.begin() as session:
        delivered = cases.deliver_message(
            session, name, data, elder_id=elder_id, case_id=case_id, signal=is_signal
        )
    click.echo(f"已送达 {len(delivered)} 个案件：{delivered}" if delivered else "没有案件在等待此消息")


def _change(change) -> None:
    """Run one change in its own transaction and print what it says; a refusal is a clear error, exit 1."""
    _, make = _sessions()
    try:
        with make.begin() as session:
            click.echo(change(session))
    except DomainError as exc:
        raise click.ClickException(exc.message) from exc


@main.group("area")
def area_group() -> None:
    """Administrative areas: the county, its townships and villages (setting up without demo data)."""


@area_group.command("add")
@click.argument("code")
@click.argument("name")
def area_add(code: str, name: str) -> None:
    """Add an area: a 6-digit county, a 9-digit township or a 12-digit village (parents first)."""

    def add(session):
        area = areas.add_area(session, code, name)
        return f"已添加{areas.level_label(area)}：{area.code} {area.name}"

    _change(add)


@area_group.command("list")
def area_list() -> None:
    """List the areas, indented by level."""
    _, make = _sessions()
    with make() as session:
        for area in areas.list_areas(session):
            indent = "  " * (len(area.code) // 3 - 2)
            click.echo(f"{indent}{area.code} {area.name}")


@main.group("targets")
def targets_group() -> None:
    """A county's targets (月探访率, 周探访率, 适老化改造户数 ...): list them, or set one."""


@targets_group.command("list")
@click.argument("county")
def targets_list(county: str) -> None:
    """List a county's targets: its own values, and the seeds' defaults where it set none."""
    from workflows import targets

    _, make = _sessions()
    with make() as session:
        for key, target in targets.targets_for(session, county).items():
            origin = f"默认：{target.spec.source}" if target.is_default else "本县设置"
            click.echo(f"{key:<32} {target.shown():>8}  {target.label}（{origin}）")


@targets_group.command("set")
@click.argument("county")
@click.argument("key")
@click.argument("value")
@click.option("--note", default="", help="依据（如文件号）")
def targets_set(county: str, key: str, value: str, note: str) -> None:
    """Set one target of a county, e.g. `eldercare targets set 410825 monthly_visit_rate 95%`."""
    from workflows import targets

    def change(session):
        target = targets.set_target(session, None, county, key, value, note)
        return f"已设置 {county} {target.label}：{target.shown()}"

    _change(change)


@main.group("user")
def user_group() -> None:
    """People who sign in: add, list, unlock, new password, disable or enable."""


def _ask_password() -> str:
    # Typed twice and never echoed; ELDERCARE_NEW_PASSWORD serves scripted set-ups.
    return os.environ.get("ELDERCARE_NEW_PASSWORD") or click.prompt(
        "密码 / password", hide_input=True, confirmation_prompt=True
    )


@user_group.command("add")
@click.argument("username")
@click.option("--name", "display_name", required=True, help="姓名（含单位） / display name")
@click.option("--role", required=True, help="角色代码，如 caseworker / role code")
@click.option("--area", "area_code", required=True, help="管辖区划代码 / area code")
def user_add(username: str, display_name: str, role: str, area_code: str) -> None:
    """Add a user; the password is asked for (twice, hidden)."""
    password = _ask_password()

    def add(session):
        data = {"username": username, "display_name": display_name, "role": role, "area_code": area_code}
        user = users.add_user(session, None, data, password=password).user
        return f"已添加用户 {user.username}（{user.display_name}，{user.role.value}，{user.area_code}）"

    _change(add)


@user_group.command("list")
def user_list() -> None:
    """List the users with role, area and state."""
    _, make = _sessions()
    with make() as session:
        now = clock.now()
        for user in users.list_users(session):
            state = (
                "停用"
                if not user.is_active
                else "锁定"
                if user.locked_until and user.locked_until > now
                else "正常"
            )
            click.echo(
                f"{user.username:20} {user.role.value:18} {user.area_code:13} {state}  {user.display_name}"
            )


@user_group.command("unlock")
@click.argument("username")
def user_unlock(username: str) -> None:
    """Lift a sign-in lock now."""
    _change(lambda session: f"已解除 {users.unlock(session, username).username} 的登录锁定")


@user_group.command("password")
@click.argument("username")
def user_password(username: str) -> None:
    """Set a new password (asked for twice, hidden); it also lifts a sign-in lock."""
    password = _ask_password()
    _change(lambda session: f"已为 {users.set_password(session, username, password).username} 设置新密码")


@user_group.command("disable")
@click.argument("username")
def user_disable(username: str) -> None:
    """Disable a user who has left: no more sign-ins, API tokens refused."""
    _change(lambda session: f"已停用 {users.set_active(session, username, False).username}")


@user_group.command("enable")
@click.argument("username")
def user_enable(username: str) -> None:
    """Enable a disabled user again."""
    _change(lambda session: f"已启用 {users.set_active(session, username, True).username}")


@main.group("calendar")
def calendar_group() -> None:
    """The working-day calendar: holidays and make-up workdays by year (the county's entries come first)."""


@calendar_group.command("list")
def calendar_list() -> None:
    """The years around today and every entered year, with where their days come from."""
    _, make = _sessions()
    with make() as session:
        for warning in calendars.warnings(session):
            click.echo(f"警告：{warning}", err=True)
        for year in calendars.overview(session):
            days = f"放假 {year.holidays} 天，调休上班 {year.workdays} 天" if year.source != "missing" else ""
            click.echo(f"{year.year}  {year.source_label:6}  {days}  {year.notice}".rstrip())


@calendar_group.command("show")
@click.argument("year", type=click.IntRange(calendars.FIRST_YEAR, calendars.LAST_YEAR))
def calendar_show(year: int) -> None:
    """A year's days off and make-up workdays, in the form `calendar set` reads."""
    _, make = _sessions()
    with make() as session:
        source, days = calendars.year_days(session, year)
    if source == "missing":
        raise click.ClickException(f"{year} 年尚无放假和调休安排")
    click.echo(f"# {year} 年（{'本县录入' if source == 'county' else '程序库内置'}）")
    click.echo(calendars.format_days(days))


@calendar_group.command("set")
@click.argument("year", type=click.IntRange(calendars.FIRST_YEAR, calendars.LAST_YEAR))
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--notice", default="", help="依据的通知文号 / the State Council notice")
def calendar_set(year: int, path: Path, notice: str) -> None:
    """Enter or correct a year from a file (one line per period: 2027-02-06~2027-02-12 休 春节)."""
    text = path.read_bytes().decode("utf-8-sig", errors="strict")

    def enter(session):
        entered = calendars.enter_year(session, None, year, text, notice=notice)
        lines = [
            f"已{'录入' if entered.created else '更正'} {year} 年：{len(entered.days)} 天；{len(entered.moved)} 项期限重新计算"
        ]
        lines += [
            f"  案件 #{m.case_id} {m.what}：{clock.local_text(m.old, '%Y-%m-%d')} → {clock.local_text(m.new, '%Y-%m-%d')}"
            for m in entered.moved
        ]
        return "\n".join(lines)

    _change(enter)


@main.group("import")
def import_group() -> None:
    """Import data from files."""


@import_group.command("elders")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--skip-bad", is_flag=True, help="导入合格行，问题行写入报告 / import good rows, report bad ones"
)
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="问题报告（CSV）路径 / where to write the problem report",
)
@click.option("--as", "username", default="admin", show_default=True, help="以哪个用户的身份导入")
def import_elders(path: Path, skip_bad: bool, report_path: Path | None, username: str) -> None:
    """Import an elder roster (.xlsx or .csv): every row is checked first."""
    if skip_bad and report_path is None:
        report_path = path.with_name(path.stem + "_问题报告.csv")
    _, make = _sessions()
    with make.begin() as session:
        actor = session.scalar(select(User).where(User.username == username))
        if actor is None:
            raise click.ClickException(f"用户 {username} 不存在")

        def progress(done: int, total: int) -> None:
            # One line rewritten in place on a terminal; its own line each time elsewhere (a log file).
            if sys.stderr.isatty():
                click.echo(f"\r已检查 {done}/{total} 行", nl=done >= total, err=True)
            elif done >= total:
                click.echo(f"已检查 {done}/{total} 行", err=True)

        report = roster.import_roster(
            session, actor, path, skip_bad=skip_bad, report_path=report_path, progress=progress
        )
    for problem in report.problems[:200]:
        click.echo(f"第{problem.row}行 [{problem.column}] {problem.reason}")
    if len(report.problems) > 200:
        click.echo(f"……另有 {len(report.problems) - 200} 个问题，见报告文件")
    click.echo(f"共 {report.total_rows} 行，导入 {report.imported} 行，问题 {len(report.problems)} 个")
    if report.report_path:
        click.echo(f"问题报告：{report.report_path}")
    if not report.ok and not skip_bad:
        click.echo("有问题行，未导入任何数据（可用 --skip-bad 只导入合格行）", err=True)
        sys.exit(1)


@main.command()
@click.argument("id_number")
@click.option("--jurisdiction", help="清单辖区（默认按户籍/居住地推断）")
@click.option("--on", "on_date", type=click.DateTime(formats=["%Y-%m-%d"]), help="按哪一天的清单版本")
def match(id_number: str, jurisdiction: str | None, on_date) -> None:
    """List the catalogue items an elder qualifies for (政策找人), with reasons and amounts."""
    _, make = _sessions()
    day = on_date.date() if on_date else None
    with make() as session:
        try:
            result = matching.match_registered_elder(session, id_number, jurisdiction=jurisdiction, on=day)
        except (ValueError, DomainError) as exc:
            raise click.ClickException(getattr(exc, "message", None) or str(exc)) from exc
    click.echo(result.render_text())


@main.command("backup")
@click.argument("destination", type=click.Path(dir_okay=False, path_type=Path))
def backup_command(destination: Path) -> None:
    """Back up the database and the instance folder (documents, keys) into one .tar file, while running."""
    engine, _ = _sessions()
    try:
        manifest = backup.backup(
            engine, config.instance_dir(), destination, log=lambda m: click.echo(m, err=True)
        )
    except backup.BackupError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        engine.dispose()
    counts = manifest["counts"]
    click.echo(
        f"已备份到 {destination}：案件 {counts['cases']}，记录 {counts['events']}，用户 {counts['users']}，"
        f"附件 {counts['attachments']}，文件 {len(manifest['members']) - 1}"
    )


@main.command("restore")
@click.argument("archive", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="覆盖已有数据的数据库 / overwrite a database that holds data")
def restore_command(archive: Path, force: bool) -> None:
    """Restore a backup into this instance (stop its server and worker first), then verify every case's
    hash chain and every document's file; exit 1 if anything does not verify."""
    engine, _ = _sessions()
    try:
        result = backup.restore(
            archive, engine, config.instance_dir(), force=force, log=lambda m: click.echo(m, err=True)
        )
    except backup.BackupError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        engine.dispose()
    counts, expected = result["counts"], result["expected"]
    click.echo(
        f"已恢复：案件 {counts['cases']}（备份时 {expected['cases']}），记录 {counts['events']}，"
        f"用户 {counts['users']}，附件 {counts['attachments']}"
    )
    for problem in result["problems"][:100]:
        click.echo(f"校验未通过：{problem}", err=True)
    if result["problems"] or counts != expected:
        raise click.ClickException(f"恢复后校验发现 {len(result['problems'])} 个问题")
    click.echo("每个案件的哈希链与每个附件文件均已校验通过")


@main.group("clock")
def clock_group() -> None:
    """Move this instance's clock, for acceptance tests (needs ELDERCARE_CLOCK_FILE, read by every process
    of the instance: web workers and background worker alike). Production instances never set it."""


def _clock_file() -> Path:
    path = config.clock_file()
    if path is None:
        raise click.ClickException(
            "此实例的时钟不可调整：仅用于验收测试，启动时须设置 ELDERCARE_CLOCK_FILE / "
            "this instance's clock cannot be moved: start it with ELDERCARE_CLOCK_FILE set"
        )
    return path


def _show_clock(path: Path) -> None:
    offset = clock.ShiftedClock.read_offset(path)
    click.echo(f"{clock.local_text(clock.ShiftedClock(path)(), '%Y-%m-%d %H:%M:%S')}（偏移 {offset}）")


_SPAN = {"d": "days", "h": "hours", "m": "minutes", "s": "seconds"}


@clock_group.command("show")
def clock_show() -> None:
    """Print the instance's time (Beijing) and how far it is moved."""
    _show_clock(_clock_file())


@clock_group.command("set")
@click.argument("when", type=click.DateTime(formats=["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d"]))
def clock_set(when) -> None:
    """Set the instance's time to WHEN (Beijing time); it runs on from there."""
    path = _clock_file()
    target = when.replace(tzinfo=clock.LOCAL)
    clock.ShiftedClock.write_offset(path, target - datetime.now(UTC))
    _show_clock(path)


@clock_group.command("advance")
@click.argument("span")
def clock_advance(span: str) -> None:
    """Move the instance's time forward by SPAN: 3d, 12h, 90m or 30s."""
    path = _clock_file()
    unit = _SPAN.get(span[-1:])
    try:
        amount = float(span[:-1])
    except ValueError:
        amount = None
    if unit is None or amount is None:
        raise click.BadParameter("例如 3d、12h、90m、30s", param_hint="SPAN")
    offset = clock.ShiftedClock.read_offset(path) + timedelta(**{unit: amount})
    clock.ShiftedClock.write_offset(path, offset)
    _show_clock(path)


@clock_group.command("reset")
def clock_reset() -> None:
    """Put the instance's clock back to real time."""
    path = _clock_file()
    clock.ShiftedClock.write_offset(path, timedelta(0))
    _show_clock(path)


@main.command(context_settings={"ignore_unknown_options": True})
@click.argument("options", nargs=-1, type=click.UNPROCESSED)
def chaos(options: tuple[str, ...]) -> None:
    """Races, kills and a database outage against a server on loopback; prints one JSON line of counts
    (`python -m bench chaos --help`). Not a test: it takes minutes and the machine's whole attention."""
    done = subprocess.run(
        [sys.executable, "-m", "bench", "chaos", *options], stdout=subprocess.PIPE, text=True
    )
    click.echo(done.stdout, nl=False)
    sys.exit(done.returncode)


@main.command(context_settings={"ignore_unknown_options": True})
@click.argument(
    "which", type=click.Choice(["engine", "web", "roster", "pdf", "migration", "chaos", "bulk", "scaleout"])
)
@click.argument("options", nargs=-1, type=click.UNPROCESSED)
def bench(which: str, options: tuple[str, ...]) -> None:
    """Run a benchmark (`python -m bench WHICH --help`); the last line is one JSON object with the figures."""
    # Its progress goes straight to standard error; its figures come back here to be printed.
    done = subprocess.run([sys.executable, "-m", "bench", which, *options], stdout=subprocess.PIPE, text=True)
    click.echo(done.stdout, nl=False)
    sys.exit(done.returncode)


main.add_command(archive_command)

if __name__ == "__main__":
    main()
