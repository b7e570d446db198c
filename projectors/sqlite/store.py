"""The SQLite read model: applies verified events and their offsets in one transaction, and answers queries.

Safe to share between processes on one data directory: each batch runs under ``BEGIN IMMEDIATE`` and
re-reads the tracked position inside the transaction, so two projectors never apply an event twice.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from infra.log import Clock, LogRecord
from infra.sqlite_checkpoint import BackgroundCheckpointer
from projectors import convergence, link_merge
from projectors.base import ApplyResult, Verdict
from projectors.errors import ReadModelError
from projectors.graph_store import follow_replayed
from projectors.memory_model import MemoryReadModel
from projectors.rules import cause_refusal
from projectors.sqlite.apply import WRONG_DIMENSION, Inapplicable
from projectors.sqlite.archive import SQLiteArchiveQueries
from projectors.sqlite.domains import APPLIERS, MEMORY_APPLIERS
from projectors.sqlite.governance import SQLiteGovernanceQueries
from projectors.sqlite.graph import SQLiteGraphQueries
from projectors.sqlite.identity import SQLiteIdentityQueries
from projectors.sqlite.queries import SQLiteMemoryQueries
from projectors.sqlite.schema import connect, drop_index_triggers, restore_index_triggers
from projectors.sqlite.sql import SQLiteSql
from projectors.subscription_queries import SQLiteSubscriptionQueries
from schemas import SchemaError, decode_payload

__all__ = ["SQLiteReadModel"]

PROJECTION = "memories"


@contextlib.contextmanager
def _mapped_errors() -> Iterator[None]:
    try:
        yield
    except sqlite3.Error as exc:
        raise ReadModelError(f"sqlite read model: {exc}") from exc


class SQLiteReadModel(MemoryReadModel):
    def __init__(self, path: Path | str, *, bulk: bool = False) -> None:
        """``bulk=True`` is for replaying a whole log into an empty model: the FTS and rank indexes are built
        once by :meth:`finish_bulk` instead of row by row (over twice as fast); queries are not valid before."""
        self.path = path
        with _mapped_errors():
            self._db = connect(path)
            if bulk:
                drop_index_triggers(self._db)
        self._bulk = bulk
        self._checkpointer: BackgroundCheckpointer | None = None
        if not bulk and str(path) != ":memory:":
            BackgroundCheckpointer.relieve(self._db)
            self._checkpointer = BackgroundCheckpointer(path)
            self._checkpointer.start()
        self.queries = SQLiteMemoryQueries(self._db)
        self.subscriptions = SQLiteSubscriptionQueries(self._db)
        self.archive = SQLiteArchiveQueries(self._db)
        self.governance = SQLiteGovernanceQueries(self._db)
        self.graph = SQLiteGraphQueries(self._db)
        self.identity = SQLiteIdentityQueries(self._db)

    @property
    def location(self) -> str:
        return str(self.path)

    def finish_bulk(self) -> None:
        if self._bulk:
            # Not one transaction (executescript commits): fine, a bulk model is a scratch file until it is whole.
            with _mapped_errors():
                restore_index_triggers(self._db)
            self._bulk = False

    def position(self) -> Clock:
        rows = self._db.execute('SELECT partition, "offset" FROM tracking WHERE projection = ?', (PROJECTION,))
        return {r["partition"]: r["offset"] for r in rows}

    def apply_batch(self, verdicts: Sequence[Verdict]) -> ApplyResult:
        applied = skipped = rejected = 0
        with _mapped_errors():
            self._db.execute("BEGIN IMMEDIATE")
            try:
                position = self.position()
                for verdict in verdicts:
                    record = verdict.record
                    if record.offset <= position.get(record.partition, 0):
                        skipped += 1
                        continue
                    reason = verdict.rejected or self._apply(record)
                    if reason == "duplicate":
                        skipped += 1
                    elif reason:
                        self._reject(record, reason)
                        rejected += 1
                    else:
                        applied += 1
                    position[record.partition] = record.offset
                self._settle_history()
                self._db.executemany(
                    'INSERT INTO tracking (projection, partition, "offset") VALUES (?, ?, ?) '
                    'ON CONFLICT (projection, partition) DO UPDATE SET "offset" = excluded."offset"',
                    [(PROJECTION, part, off) for part, off in position.items()])
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        return ApplyResult(applied=applied, skipped=skipped, rejected=rejected)

    def _apply(self, record: LogRecord) -> str | None:
        """Apply one record; return why it was not applied, or None."""
        envelope = record.event.envelope
        cur = self._db.execute("INSERT OR IGNORE INTO applied_events (event_id) VALUES (?)", (envelope.event_id,))
        if cur.rowcount == 0:
            return "duplicate"
        if envelope.cause is not None and (refused := self._cause_refusal(envelope.cause)) is not None:
            convergence.stamp(SQLiteSql(self._db), record)  # refused or not, it holds its place in merge order
            return refused
        try:
            payload = decode_payload(envelope.type, envelope.payload)
        except SchemaError as exc:
            return str(exc)
        applier = APPLIERS.get(envelope.type)
        if applier is None:
            return None  # an event of a type this read model keeps nothing of
        # No savepoint per event: every applier checks before it writes, and a statement that still fails
        # (a constraint) is undone by SQLite on its own, so a refused event leaves no trace.
        sql = SQLiteSql(self._db)
        return convergence.apply_event(
            sql, record, payload, lambda: applier(self._db, payload, record),
            lambda kind, again: MEMORY_APPLIERS[kind](self._db, again), (Inapplicable, sqlite3.IntegrityError),
            partitioned=self.partitioned, replayed=lambda ids: follow_replayed(sql, ids, record.offset))

    def _settle_history(self) -> int:
        """Drop the memory history older than the horizon (:func:`projectors.convergence.settle`), in the
        caller's transaction; how many events were dropped."""
        if not self.partitioned or self.history_horizon_s is None:
            return 0
        return convergence.settle(SQLiteSql(self._db), convergence.memory_replayer(
            lambda kind, again: MEMORY_APPLIERS[kind](self._db, again), (Inapplicable, sqlite3.IntegrityError)),
            horizon_s=self.history_horizon_s, least=self.history_settle_least)

    def _cause_refusal(self, cause: str) -> str | None:
        row = self._db.execute("SELECT reason FROM rejected_events WHERE event_id = ? LIMIT 1", (cause,)).fetchone()
        seen = self._db.execute("SELECT 1 FROM applied_events WHERE event_id = ?", (cause,)).fetchone() is not None
        return cause_refusal(cause, None if row is None else str(row[0]), seen)

    def _reject(self, record: LogRecord, reason: str) -> None:
        self._db.execute(
            'INSERT OR REPLACE INTO rejected_events (partition, "offset", event_id, type, reason) '
            "VALUES (?, ?, ?, ?, ?)",
            (record.partition, record.offset, record.event.event_id, record.event.envelope.type, reason))

    def refusal(self, partition: str, offset: int) -> str | None:
        row = self._db.execute('SELECT reason FROM rejected_events WHERE partition = ? AND "offset" = ?',
                               (partition, offset)).fetchone()
        return None if row is None else str(row[0])

    def rejected_count(self) -> int:
        (n,) = self._db.execute("SELECT count(*) FROM rejected_events").fetchone()
        return int(n)

    def rejected_events(self, *, limit: int = 100) -> list[dict[str, object]]:
        rows = self._db.execute('SELECT partition, "offset", event_id, type, reason FROM rejected_events '
                                'ORDER BY partition, "offset" LIMIT ?', (limit,))
        return [dict(r) for r in rows]

    def dim_violations(self) -> int:
        """memory.embedded events refused for carrying a vector of the wrong dimension."""
        (n,) = self._db.execute("SELECT count(*) FROM rejected_events WHERE type = 'memory.embedded' "
                                "AND substr(reason, 1, ?) = ?", (len(WRONG_DIMENSION), WRONG_DIMENSION)).fetchone()
        return int(n)

    def title_conflicts(self) -> list[dict[str, str]]:
        """Memories kept under a conflict title: another region claimed theirs first (docs/regions.md)."""
        return convergence.title_conflicts(SQLiteSql(self._db))

    def link_conflicts(self) -> list[dict[str, Any]]:
        """Links written from several regions, merged by merge order (docs/regions.md)."""
        return link_merge.link_conflicts(SQLiteSql(self._db))

    def applied_count(self) -> int:
        (n,) = self._db.execute("SELECT count(*) FROM applied_events").fetchone()
        return int(n)

    def meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM model_meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row["value"])

    def set_meta(self, key: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO model_meta (key, value) VALUES (?, ?)", (key, value))

    def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.stop()
        self.queries.close()
        self._db.close()
