"""The embedded log: a SQLite file in WAL mode. Zero ops; the default for one node.

An append is one ``BEGIN IMMEDIATE`` transaction with ``synchronous=FULL``, so it is on disk when acknowledged
and a batch is all-or-nothing. The event id is UNIQUE, so a re-sent event is stored once, forever. Several
processes may share the file (a server and an MCP process); in-process subscribers are woken on append and
other processes' appends are noticed by polling ``PRAGMA data_version``.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path

from infra.log.base import Clock, EventLog, LogPosition, LogRecord, unreadable_record
from infra.log.errors import (
    AppendConflictError,
    LogClosedError,
    LogError,
    LogUnavailableError,
)
from schemas import SchemaError, SignedEvent

__all__ = ["EmbeddedLog"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    "offset"  INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id  TEXT NOT NULL UNIQUE,
    body      BLOB NOT NULL,
    signature BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS consumer_positions (
    consumer  TEXT NOT NULL,
    partition TEXT NOT NULL,
    "offset"  INTEGER NOT NULL,
    PRIMARY KEY (consumer, partition)
);
"""


@contextlib.contextmanager
def _mapped_errors() -> Iterator[None]:
    """The one place sqlite3 errors become log errors."""
    try:
        yield
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            raise LogUnavailableError(f"embedded log is busy: {exc}") from exc
        raise LogError(f"embedded log: {exc}") from exc
    except sqlite3.DatabaseError as exc:
        raise LogError(f"embedded log: {exc}") from exc


class EmbeddedLog(EventLog):
    ATOMIC_BATCHES = True
    SUPPORTS_EXPECTED = True
    DEDUP_FOREVER = True

    def __init__(self, path: Path, *, partition: str = "ai-memory") -> None:
        self._path = Path(path)
        self._partition = partition
        self._path.parent.mkdir(parents=True, exist_ok=True)
        with _mapped_errors():
            self._db: sqlite3.Connection | None = sqlite3.connect(
                self._path, isolation_level=None, check_same_thread=False, timeout=10.0)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
        self._appended = asyncio.Event()
        self._data_version = self._version()

    @property
    def url(self) -> str:
        return f"sqlite://{self._path}"

    @property
    def path(self) -> Path:
        return self._path

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise LogClosedError("embedded log is closed")
        return self._db

    def _version(self) -> int:
        row = self._conn().execute("PRAGMA data_version").fetchone()
        return int(row[0])

    async def append(self, events: Sequence[SignedEvent], *, expected: Clock | None = None,
                     new: bool = False) -> list[LogPosition]:
        if not events:
            return []
        db = self._conn()
        with _mapped_errors():
            db.execute("BEGIN IMMEDIATE")
            try:
                offsets = self._append_locked(db, events, expected)
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        self._wake()
        return [LogPosition(self._partition, off) for off in offsets]

    def _append_locked(self, db: sqlite3.Connection, events: Sequence[SignedEvent],
                       expected: Clock | None) -> list[int]:
        if expected is not None:
            want = expected.get(self._partition, 0)
            (end,) = db.execute('SELECT coalesce(max("offset"), 0) FROM events').fetchone()
            if end != want:
                raise AppendConflictError(self._partition, want, end)
        offsets = []
        for event in events:
            cur = db.execute("INSERT OR IGNORE INTO events (event_id, body, signature) VALUES (?, ?, ?)",
                             (event.event_id, event.body, event.signature))
            if cur.rowcount == 1:
                offsets.append(int(cur.lastrowid or 0))
            else:
                (off,) = db.execute('SELECT "offset" FROM events WHERE event_id = ?', (event.event_id,)).fetchone()
                offsets.append(int(off))
        return offsets

    def _wake(self) -> None:
        self._appended.set()
        self._appended = asyncio.Event()

    async def read(self, *, after: Clock | None = None, limit: int = 1000) -> list[LogRecord]:
        start = (after or {}).get(self._partition, 0)
        with _mapped_errors():
            rows = self._conn().execute(
                'SELECT "offset", body, signature FROM events WHERE "offset" > ? ORDER BY "offset" LIMIT ?',
                (start, limit)).fetchall()
        return [self._record(off, body, sig) for off, body, sig in rows]

    def _record(self, offset: int, body: bytes, signature: bytes) -> LogRecord:
        try:
            event = SignedEvent.from_parts(body, signature)
        except SchemaError as exc:
            return unreadable_record(self._partition, offset, body, signature, str(exc))
        return LogRecord(self._partition, offset, event)

    async def wait_for_append(self, after: Clock, *, timeout: float) -> None:
        end = await self.end_offsets()
        if end[self._partition] > after.get(self._partition, 0):
            return
        waiter = self._appended
        deadline = asyncio.get_running_loop().time() + timeout
        # Another process's append only shows in data_version, so poll it while waiting for our own.
        while (left := deadline - asyncio.get_running_loop().time()) > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(waiter.wait(), timeout=min(left, 0.05))
                return
            version = self._version()
            if version != self._data_version:
                self._data_version = version
                return

    async def end_offsets(self) -> Clock:
        with _mapped_errors():
            (end,) = self._conn().execute('SELECT coalesce(max("offset"), 0) FROM events').fetchone()
        return {self._partition: int(end)}

    async def commit_position(self, consumer: str, clock: Clock) -> None:
        with _mapped_errors():
            self._conn().executemany(
                'INSERT INTO consumer_positions (consumer, partition, "offset") VALUES (?, ?, ?) '
                'ON CONFLICT (consumer, partition) DO UPDATE SET "offset" = excluded."offset"',
                [(consumer, part, off) for part, off in clock.items()])

    async def committed_position(self, consumer: str) -> Clock:
        with _mapped_errors():
            rows = self._conn().execute(
                'SELECT partition, "offset" FROM consumer_positions WHERE consumer = ?', (consumer,)).fetchall()
        return {part: int(off) for part, off in rows}

    async def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
