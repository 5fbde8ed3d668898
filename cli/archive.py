"""`eldercare archive`: a zip of an area's case files for a year (一户一档), with progress lines."""

from __future__ import annotations

from pathlib import Path

import click

from workflows import config


@click.command("archive")
@click.option("--area", "area_code", help="行政区划代码（县 6 位或乡镇 9 位）/ area code")
@click.option("--year", type=int, help="办结年份 / the year the cases were closed")
@click.option("--process", "process_key", default=None, help="只归档某一业务（流程标识，如 home_care）")
@click.option(
    "--user", "username", default=None, help="以该用户身份打印（按其角色遮蔽）；默认系统归档，不遮蔽"
)
@click.option("--workers", type=int, default=None, help="并行进程数（默认每核一个）/ processes")
@click.option("--job", "job_id", type=int, default=None, help="运行网页上已登记的归档任务 / run a queued job")
@click.option(
    "--uploads", type=click.Path(path_type=Path), default=None, help="附件目录（默认实例目录下 attachments）"
)
def archive(area_code, year, process_key, username, workers, job_id, uploads) -> None:
    """Archive the case files of an area's cases closed in a year into a zip under the instance folder."""
    from sqlalchemy import select

    from casefiles import archive as bulk
    from workflows import archives
    from workflows.db import make_engine, session_factory
    from workflows.errors import DomainError
    from workflows.models import User

    url = config.database_url()
    engine = make_engine(url)
    make = session_factory(engine)
    if job_id is None:
        if not area_code or year is None:
            raise click.UsageError("请给出 --area 和 --year（或 --job）")
        try:
            with make.begin() as session:
                actor = None
                if username:
                    actor = session.scalar(select(User).where(User.username == username))
                    if actor is None:
                        raise click.ClickException(f"没有用户 {username}")
                job_id = archives.request_archive(session, actor, area_code, year, process_key).id
        except DomainError as exc:
            raise click.ClickException(exc.message) from exc
    engine.dispose()
    try:
        target = bulk.run_job(url, job_id, upload_root=uploads, workers=workers, log=click.echo, nice=5)
    except DomainError as exc:
        raise click.ClickException(exc.message) from exc
    if target is None:
        raise click.ClickException("归档失败，详见上方信息")
