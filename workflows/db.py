"""Database engines and sessions: SQLite embedded by default, PostgreSQL by DATABASE_URL."""

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from . import config


def make_engine(url: str | None = None, **kwargs) -> Engine:
    """Create an engine; SQLite gets WAL, foreign keys and a busy timeout so readers never block writers."""
    url = url or config.database_url()
    if url.startswith("sqlite"):
        kwargs.setdefault("connect_args", {"timeout": 30, "check_same_thread": False})
        engine = create_engine(url, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):
            # Let SQLAlchemy, not pysqlite, decide when transactions begin (needed for SAVEPOINT and locking).
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn):
            # IMMEDIATE takes the write lock up front, so two writers queue instead of failing mid-way.
            # (On the driver directly: this starts every transaction.)
            conn.connection.driver_connection.execute("BEGIN IMMEDIATE")

        return engine
    # Recycle rather than pre-ping: a ping would cost one round trip on every request.
    kwargs.setdefault("pool_recycle", 1800)
    return create_engine(url, **kwargs)


def is_postgres(bind) -> bool:
    return bind.dialect.name == "postgresql"


# A case's state (~10 KB of JSON) is rewritten on every step. PostgreSQL compresses such values with
# pglz by default; lz4 (PostgreSQL 14+, when the server is built with it) takes a third less time
# per write of the hot path for the same space.
FAST_COMPRESSED_COLUMNS = {"cases": ("state", "data")}


def use_fast_compression(connection, table: str) -> None:
    """On PostgreSQL with lz4 support, compress the table's large columns with lz4 (else do nothing)."""
    if not is_postgres(connection):
        return
    supported = connection.exec_driver_sql(
        "SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'"
    ).scalar()
    if not supported:
        return
    for column in FAST_COMPRESSED_COLUMNS.get(table, ()):
        connection.exec_driver_sql(f"ALTER TABLE {table} ALTER COLUMN {column} SET COMPRESSION lz4")


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)
