"""Database engines and sessions: SQLite embedded by default, PostgreSQL by DATABASE_URL."""

import hashlib
import select

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker

from . import config


def make_engine(url: str | None = None, *, sqlite_synchronous: str = "FULL", **kwargs) -> Engine:
    """Create an engine; SQLite gets WAL, foreign keys and a busy timeout so readers never block writers.

    SQLite syncs the write-ahead log on every commit (`synchronous=FULL`): with NORMAL a power cut could
    drop the last commits people were told had succeeded. `bench engine` measures what it costs.
    """
    url = url or config.database_url()
    if url.startswith("sqlite"):
        if sqlite_synchronous not in ("FULL", "NORMAL"):
            raise ValueError("sqlite_synchronous is FULL or NORMAL")
        kwargs.setdefault("connect_args", {"timeout": 30, "check_same_thread": False})
        engine = create_engine(url, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):
            # Let SQLAlchemy, not pysqlite, decide when transactions begin (needed for SAVEPOINT and locking).
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA synchronous={sqlite_synchronous}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn):
            # IMMEDIATE takes the write lock up front, so two writers queue instead of failing mid-way.
            # (On the driver directly: this starts every transaction.)
            conn.connection.driver_connection.execute("BEGIN IMMEDIATE")

        return engine
    kwargs.setdefault("pool_recycle", 1800)
    engine = create_engine(url, **kwargs)

    @event.listens_for(engine, "checkout")
    def _drop_if_closed(dbapi_conn, _record, _proxy):
        # A pooled connection the server closed while it sat idle (a restart, an administrator, a network
        # timeout) would fail the request that takes it. The server's goodbye is already in the socket:
        # look without waiting (no round trip, unlike a ping) and let the pool open a fresh one.
        if peer_has_spoken(dbapi_conn):
            raise DisconnectionError("the server closed this pooled connection")

    return engine


def peer_has_spoken(dbapi_conn) -> bool:
    """Whether an idle connection's socket has something to read: between requests the server says
    nothing, so anything there (its notice of shutting down, or the end of the stream) means it is gone."""
    conn = getattr(dbapi_conn, "driver_connection", dbapi_conn)
    if getattr(conn, "closed", False) or getattr(conn, "broken", False):
        return True
    try:
        poller = select.poll()  # not select(): it fails on descriptors past 1024
        poller.register(conn.fileno(), select.POLLIN | select.POLLPRI)
        return bool(poller.poll(0))
    except (OSError, ValueError, AttributeError):
        return True


def is_postgres(bind) -> bool:
    return bind.dialect.name == "postgresql"


_ADVISORY_LOCK = text("SELECT pg_advisory_xact_lock(:key)")


def hold_lock(session: Session, name: str) -> None:
    """Hold the lock called `name` until the session's transaction ends: whoever asks for it meanwhile waits.

    On PostgreSQL a transaction-level advisory lock on a 64-bit hash of the name (two names sharing a hash
    only wait for each other needlessly). On SQLite nothing is needed: every transaction takes the
    database's write lock when it begins (BEGIN IMMEDIATE), so writers already run one at a time.
    """
    if not is_postgres(session.get_bind()):
        return
    key = int.from_bytes(hashlib.blake2b(name.encode("utf-8"), digest_size=8).digest(), "big", signed=True)
    session.execute(_ADVISORY_LOCK, {"key": key})


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
