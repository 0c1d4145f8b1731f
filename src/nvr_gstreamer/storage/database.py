"""The catalog's database: SQLite in the storage root (the default, nothing to run) or
PostgreSQL shared by recorder nodes (``catalog.url: postgresql://…``).

The catalog's SQL is written once, in the common subset of both, with ``?`` parameters and
two spellings that differ: ``GREATEST(a, b)`` (SQLite's two-argument ``MAX``) and SQLite's
``INDEXED BY`` planner hint (dropped for PostgreSQL, whose planner needs none). :class:`Db`
says a statement in its connection's dialect; new rows' ids come back by ``RETURNING id``.

:class:`Connector` owns one connection, kept open and shared under a lock (see
:class:`~nvr_gstreamer.storage.catalog.Catalog` for why SQLite's stays open). A PostgreSQL
connection that broke (server restarted, network gone) is dropped, and the next call connects
again: a catalog write that failed meanwhile is the caller's to retry (the storage service
keeps such writes in order until the database is back).
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager, suppress
from enum import Enum
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import psycopg
from psycopg.rows import dict_row, tuple_row

from nvr_gstreamer.core.redact import redact

__all__ = ["DB_ERRORS", "PERMANENT_ERRORS", "STORAGE_ERRORS", "Connector", "Db", "Dialect"]

# Every error a catalog call can raise for a reason outside the program: a full or vanished
# disk (SQLite), a database server that is down or unreachable (PostgreSQL).
DB_ERRORS = (sqlite3.Error, psycopg.Error)
# ... and with the files beside it: what the storage service retries later, in order.
STORAGE_ERRORS = (sqlite3.Error, psycopg.Error, OSError)
# Errors that a retry cannot mend (a constraint the write breaks): the write is dropped, loudly,
# rather than holding up every write after it.
PERMANENT_ERRORS = (sqlite3.IntegrityError, psycopg.IntegrityError)

# Seconds to wait for a PostgreSQL server before a call fails (and is retried later).
CONNECT_TIMEOUT_S = 5
# A statement that takes longer than this is cancelled by the server.
STATEMENT_TIMEOUT_MS = 15_000


class Dialect(Enum):
    SQLITE = "sqlite"
    POSTGRES = "postgresql"


Row = Mapping[str, Any]


class _Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


_INDEXED_BY = re.compile(r"\s+INDEXED BY \w+")
_COMMENT = re.compile(r"--[^\n]*")


@lru_cache(maxsize=512)
def _translate(dialect: Dialect, sql: str) -> str:
    if dialect is Dialect.SQLITE:
        return sql.replace("GREATEST(", "MAX(")
    return _INDEXED_BY.sub("", sql).replace("?", "%s")


class Db:
    """One connection in a transaction, speaking the catalog's SQL in its dialect."""

    def __init__(self, conn: Any, dialect: Dialect) -> None:
        self._conn = conn
        self.dialect = dialect

    def execute(self, sql: str, args: Sequence[object] = ()) -> _Cursor:
        """Rows by column name."""
        cur: _Cursor = self._conn.execute(_translate(self.dialect, sql), tuple(args))
        return cur

    def tuples(self, sql: str, args: Sequence[object] = ()) -> Iterable[tuple[Any, ...]]:
        """Rows as plain tuples (for long results: named rows take twice as long)."""
        if self.dialect is Dialect.SQLITE:
            cur = self._conn.cursor()
            cur.row_factory = None
        else:
            cur = self._conn.cursor(row_factory=tuple_row)
        result: Iterable[tuple[Any, ...]] = cur.execute(_translate(self.dialect, sql), tuple(args))
        return result

    def one(self, sql: str, args: Sequence[object] = ()) -> Row | None:
        row: Row | None = self.execute(sql, args).fetchone()
        return row

    def insert(self, sql: str, args: Sequence[object] = ()) -> int:
        """Run an INSERT and return the new row's id."""
        row = self.execute(sql + " RETURNING id", args).fetchone()
        return int(row["id"])

    def executemany(self, sql: str, rows: Iterable[Sequence[object]]) -> None:
        sql = _translate(self.dialect, sql)
        if self.dialect is Dialect.SQLITE:
            self._conn.executemany(sql, rows)
        else:
            with self._conn.cursor() as cur:
                cur.executemany(sql, list(rows))

    def script(self, sql: str) -> None:
        """Statements without parameters (schema changes), in this dialect already, inside
        the transaction (sqlite3's ``executescript`` would commit first)."""
        if self.dialect is Dialect.POSTGRES:
            self._conn.execute(sql)
            return
        for statement in _COMMENT.sub("", sql).split(";"):
            if statement.strip():
                self._conn.execute(statement)


class Connector:
    """Opens and keeps the catalog's one connection (thread-safe: every use holds the lock).

    ``url`` None: the SQLite file at ``sqlite_path``, created only when ``create`` is given to
    :meth:`transaction` (a storage root that is an empty mount point now, its drive gone, must
    not get a fresh catalog on the wrong disk)."""

    def __init__(self, sqlite_path: Path | None, url: str | None = None) -> None:
        self.dialect = Dialect.SQLITE if url is None else Dialect.POSTGRES
        self.sqlite_path = sqlite_path
        self._url = url
        self.lock = threading.RLock()
        self._conn: Any = None

    @property
    def where(self) -> str:
        """What a log line names: the file, or the server without the password."""
        return str(self.sqlite_path) if self._url is None else redact(self._url)

    def reset(self) -> None:
        """Close the connection; the next call opens it again."""
        with self.lock:
            if self._conn is not None:
                with suppress(*DB_ERRORS):
                    self._conn.close()
                self._conn = None

    @contextmanager
    def transaction(self, create: bool = False) -> Iterator[Db]:
        with self.lock:
            if self._conn is None:
                self._conn = self._open(create)
            conn = self._conn
            if self.dialect is Dialect.SQLITE:
                with conn:
                    yield Db(conn, self.dialect)
                return
            try:
                with ExitStack() as stack:
                    try:
                        stack.enter_context(conn.transaction())
                    except psycopg.OperationalError:
                        # The kept connection died since its last use (the server restarted):
                        # nothing has been done yet, so connect again once, now.
                        self.reset()
                        conn = self._conn = self._open(create)
                        stack.enter_context(conn.transaction())
                    yield Db(conn, self.dialect)
            except psycopg.Error:
                if conn.broken or conn.closed:
                    self.reset()  # the server went away: connect again next time
                raise

    def _open(self, create: bool) -> Any:
        if self._url is None:
            if self.sqlite_path is None:
                raise ValueError("an SQLite catalog needs its file")
            mode = "rwc" if create else "rw"
            db = sqlite3.connect(
                f"{self.sqlite_path.as_uri()}?mode={mode}",
                uri=True,
                timeout=10,
                check_same_thread=False,
            )
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            return db
        try:
            conn = psycopg.connect(
                self._url,
                autocommit=True,  # transactions are explicit (transaction())
                row_factory=dict_row,
                connect_timeout=CONNECT_TIMEOUT_S,
                application_name="nvr",
                # A server that goes silent (network cut) errors within seconds, not minutes.
                keepalives=1,
                keepalives_idle=5,
                keepalives_interval=2,
                keepalives_count=3,
                tcp_user_timeout=10_000,
            )
        except psycopg.Error as exc:
            # psycopg's message may quote the connection string: say it without the password.
            raise psycopg.OperationalError(
                f"catalog database {redact(self._url)} unreachable: " f"{redact(str(exc)).strip()}"
            ) from None
        conn.execute(f"SET statement_timeout = {STATEMENT_TIMEOUT_MS}")
        return conn
