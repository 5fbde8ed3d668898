"""Alembic environment: the URL comes from the caller (workflows.schema), the metadata from our models."""

from alembic import context
from sqlalchemy import pool

from workflows.db import make_engine
from workflows.models import Base
from workflows.models.base import UTCDateTime, ValueEnum

config = context.config
target_metadata = Base.metadata


def run_migrations_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(config.get_main_option("sqlalchemy.url"), poolclass=pool.NullPool)
    with engine.connect() as conn:
        _run(conn)


def render_item(type_, obj, autogen_context):
    """Write our column types as the plain types they store, so migrations never import model code."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    if type_ == "type" and isinstance(obj, ValueEnum):
        return f"sa.String(length={obj.impl.length})"
    return False


def _run(connection) -> None:
    # Batch mode lets the same migrations alter tables on SQLite.
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,
        compare_type=False,
        render_item=render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
