"""Statements that every case move runs, executed on the database driver's own cursor.

A completion reads one row and writes four or five. Through SQLAlchemy's execution machinery each
statement costs 15–40 µs of Python on top of the 2–5 µs SQLite takes to run it, which made SQLAlchemy
itself the largest part of a step's persistence cost. These statements are still written with
SQLAlchemy Core (so they follow the models), but each is compiled once per dialect and run on the DBAPI
connection of the session's own transaction, with the same bind and result processing SQLAlchemy
applies, so what is stored and read back is identical.

Only statements without expanding (`IN`) parameters belong here; everything else uses the session.
These statements do not pass through SQLAlchemy's execution events, so `echo` does not log them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import DBAPIError

_REQUIRED = object()


@dataclass
class _Compiled:
    sql: str
    positional: bool  # SQLite takes a tuple in `plan` order; psycopg a dict
    plan: tuple[tuple[str, Any, Any], ...]  # per parameter: name, bind processor or None, default
    result: list[Any]  # per selected column: result processor or None


def _compile(statement, dialect: Dialect, column_keys: list[str] | None) -> _Compiled:
    compiled = statement.compile(dialect=dialect, column_keys=column_keys)
    binds = compiled.binds
    names = compiled.positiontup if compiled.positional else list(binds)
    plan = []
    for name in names:
        param = binds[name]
        processor = param.type.dialect_impl(dialect).bind_processor(dialect)
        default = _REQUIRED if param.required else param.effective_value
        plan.append((name, processor, default))
    result = []
    for column in getattr(statement, "selected_columns", ()):
        result.append(column.type.dialect_impl(dialect).result_processor(dialect, None))
    return _Compiled(compiled.string, compiled.positional, tuple(plan), result)


class DriverStatement:
    """A Core statement compiled once per dialect and run on the driver's cursor.

    `column_keys` names the columns an INSERT sets (its parameters carry the same names).
    """

    def __init__(self, statement, column_keys: list[str] | None = None):
        self._statement = statement
        self._column_keys = column_keys
        self._by_dialect: dict[str, _Compiled] = {}

    def _compiled(self, dialect: Dialect) -> _Compiled:
        found = self._by_dialect.get(dialect.name)
        if found is None:
            found = self._by_dialect[dialect.name] = _compile(self._statement, dialect, self._column_keys)
        return found

    @staticmethod
    def _params(c: _Compiled, params: dict[str, Any], memo: dict):
        """The driver's parameters, processed as SQLAlchemy would; `memo` spares processing the same
        object twice (one step's time appears in many columns)."""
        out = []
        for name, processor, default in c.plan:
            value = params[name] if name in params or default is _REQUIRED else default
            if processor is not None and value is not None:
                key = (id(processor), id(value))
                done = memo.get(key)
                if done is None:
                    done = memo[key] = processor(value)
                value = done
            out.append(value)
        if c.positional:
            return tuple(out)
        return {name: value for (name, _, _), value in zip(c.plan, out, strict=True)}

    def execute(self, connection: Connection, params: dict[str, Any]):
        """Run once; return the driver's cursor (for `rowcount` or rows)."""
        c = self._compiled(connection.dialect)
        cursor = connection.connection.driver_connection.cursor()
        with _driver_errors(connection, c.sql):
            cursor.execute(c.sql, self._params(c, params, {}))
        return cursor

    def execute_many(self, connection: Connection, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        c = self._compiled(connection.dialect)
        cursor = connection.connection.driver_connection.cursor()
        with _driver_errors(connection, c.sql):
            memo: dict = {}
            cursor.executemany(c.sql, [self._params(c, row, memo) for row in rows])

    def first(self, connection: Connection, params: dict[str, Any]) -> tuple | None:
        """The first row, with SQLAlchemy's result processing (aware datetimes, enums)."""
        c = self._compiled(connection.dialect)
        row = self.execute(connection, params).fetchone()
        if row is None or not c.result:  # textual statements: no column types to process
            return row if row is None else tuple(row)
        return tuple(p(v) if p is not None else v for p, v in zip(c.result, row, strict=True))


class _driver_errors:
    """Raise the driver's errors as SQLAlchemy's (IntegrityError, OperationalError, ...), as the rest of the
    code expects; a lost connection is invalidated, so the pool never hands it out again."""

    def __init__(self, connection: Connection, sql: str):
        self._connection = connection
        self._sql = sql

    def __enter__(self):
        return self

    def __exit__(self, kind, error, _tb):
        dialect = self._connection.dialect
        if kind is None or not issubclass(kind, dialect.loaded_dbapi.Error):
            return False
        lost = dialect.is_disconnect(error, self._connection.connection.dbapi_connection, None)
        if lost:
            self._connection.invalidate(error)
        raise DBAPIError.instance(
            self._sql,
            None,
            error,
            dialect.loaded_dbapi.Error,
            connection_invalidated=lost,
            dialect=dialect,
        ) from error
