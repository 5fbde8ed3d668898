"""The Alembic migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

import os
import uuid

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text

from workflows import schema
from workflows.db import make_engine
from workflows.models import Base


def _fresh_engines(tmp_path):
    yield make_engine(f"sqlite:///{tmp_path / 'migrated.sqlite'}")
    pg = os.environ.get("ELDERCARE_TEST_PG_URL")
    if pg:
        name = f"eldercare_migrations_{uuid.uuid4().hex[:12]}"
        server = pg.replace("postgresql://", "postgresql+psycopg://", 1)
        admin = make_engine(server, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield make_engine(server.rsplit("/", 1)[0] + "/" + name)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()


def test_migrations_match_the_models(tmp_path):
    for engine in _fresh_engines(tmp_path):
        schema.upgrade(engine)
        assert schema.current_revision(engine) == schema.head_revision()
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        assert diff == [], f"{engine.dialect.name}: models and migrations differ: {diff}"
        if engine.dialect.name == "postgresql":  # what the models' DDL hook does, the migration does too
            with engine.connect() as conn:
                methods = conn.execute(
                    text(
                        "select attcompression from pg_attribute where attrelid = 'cases'::regclass and attname = 'state'"
                    )
                ).scalar()
            assert methods == "l"
        engine.dispose()


def test_upgrade_is_repeatable(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'twice.sqlite'}")
    schema.upgrade(engine)
    schema.upgrade(engine)
    assert schema.current_revision(engine) == schema.head_revision()


def test_upgrading_a_database_in_use_keeps_its_rows(tmp_path):
    # A schema change must apply to a database full of rows that refer to each other, not only to an
    # empty one (SQLite refuses to rebuild a table that others refer to).
    for engine in _fresh_engines(tmp_path):
        schema.upgrade(engine, "0002")
        with engine.begin() as conn:
            conn.execute(text("insert into areas (code, name, level) values ('410825', '温县', 'county')"))
            conn.execute(
                text(
                    "insert into users (username, display_name, password_hash, role, area_code, is_active, locale)"
                    " values ('caseworker', '经办人', '', 'caseworker', '410825', true, 'zh')"
                )
            )
            conn.execute(
                text(
                    "insert into api_tokens (user_id, token_hash, label, created_at, expires_at)"
                    " select id, 'h', 'x', current_timestamp, current_timestamp from users"
                )
            )
        schema.upgrade(engine)
        with engine.connect() as conn:
            row = conn.execute(text("select username, failed_logins, locked_until from users")).one()
        assert tuple(row) == ("caseworker", 0, None)
        engine.dispose()
