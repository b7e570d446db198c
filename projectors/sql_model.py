"""What every SQL read model does the same way: the batch loop, the tracked position and the refusal log.

A backend (:mod:`projectors.sqlite.store`, :mod:`projectors.postgres.store`) keeps what truly differs: how a
batch's transaction starts and serializes with other appliers, how an event's id is claimed, how a failing
statement is undone, its connections and error mapping. Everything here runs over :class:`~projectors.sql.Sql`.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, Generic, TypeVar

from infra.log import Clock, LogRecord
from projectors import convergence, link_merge
from projectors.appliers import Applier
from projectors.base import ApplyResult, Verdict
from projectors.graph_store import follow_replayed
from projectors.memory_model import MemoryReadModel
from projectors.rules import WRONG_DIMENSION, cause_refusal
from projectors.sql import Sql, first
from schemas import SchemaError, decode_payload

__all__ = ["PROJECTION", "FirstSight", "SqlReadModel"]

PROJECTION = "memories"
DB = TypeVar("DB")
#: Whether a record's event id is seen for the first time (claiming it): False for a re-sent event.
FirstSight = Callable[[LogRecord], bool]


class SqlReadModel(MemoryReadModel, Generic[DB]):
    """A memory read model over one backend's connection ``DB``; subclasses set the class attributes."""

    #: Event type → ``apply(db, payload, record)``: every domain's appliers.
    appliers: Mapping[str, Applier[DB]]
    #: The memory domain alone (``apply(db, payload)``): what a late memory event's replay applies again.
    memory_appliers: Mapping[str, Callable[[DB, Any], None]]
    #: What an applier raises for an event that cannot apply (recorded as a refusal, the batch goes on).
    refused: tuple[type[Exception], ...]

    @staticmethod
    @abstractmethod
    def sql(db: DB) -> Sql:
        """The backend's :class:`Sql` over a connection in the current transaction."""

    @abstractmethod
    def _reading(self) -> AbstractContextManager[Sql]:
        """A connection for a read, driver errors mapped."""

    @abstractmethod
    def _writing(self) -> AbstractContextManager[Sql]:
        """A connection whose writes commit at the end, driver errors mapped."""

    @abstractmethod
    def _first_sights(self, db: DB, verdicts: Sequence[Verdict], position: Clock) -> FirstSight:
        """How this batch tells a new event id from a re-sent one (claiming ids as applied)."""

    def _batch(self, db: DB, verdicts: Sequence[Verdict]) -> ApplyResult:
        """Apply the verdicts past the tracked position and move it, inside the caller's transaction."""
        applied = skipped = rejected = 0
        sql = self.sql(db)
        position = self._position(sql)
        first_sight = self._first_sights(db, verdicts, position)
        for verdict in verdicts:
            record = verdict.record
            if record.offset <= position.get(record.partition, 0):
                skipped += 1
                continue
            reason = verdict.rejected or ("duplicate" if not first_sight(record) else self._apply(db, record))
            if reason == "duplicate":
                skipped += 1
            elif reason:
                self._reject(sql, record, reason)
                rejected += 1
            else:
                applied += 1
            position[record.partition] = record.offset
        self._settle_history(db)
        for part, off in position.items():
            sql.run('INSERT INTO tracking (projection, partition, "offset") VALUES (:p, :part, :off) '
                    'ON CONFLICT (projection, partition) DO UPDATE SET "offset" = excluded."offset"',
                    {"p": PROJECTION, "part": part, "off": off})
        # The position this transaction writes: the runner takes it rather than reading it back after the commit.
        return ApplyResult(applied=applied, skipped=skipped, rejected=rejected, position=position)

    def _apply(self, db: DB, record: LogRecord) -> str | None:
        """Apply one new record; return why it was not applied, or None."""
        envelope = record.event.envelope
        sql = self.sql(db)
        if envelope.cause is not None and (refused := self._cause_refusal(sql, envelope.cause)) is not None:
            convergence.stamp(sql, record)  # refused or not, it holds its place in merge order
            return refused
        try:
            payload = decode_payload(envelope.type, envelope.payload)
        except SchemaError as exc:
            return str(exc)
        applier = self.appliers.get(envelope.type)
        if applier is None:
            return None  # an event of a type this read model keeps nothing of
        return self._event(db, lambda: convergence.apply_event(
            sql, record, payload, lambda: applier(db, payload, record),
            lambda kind, again: self.memory_appliers[kind](db, again), self.refused, partitioned=self.partitioned,
            replayed=lambda ids: follow_replayed(sql, ids, record.offset)))

    def _settle_history(self, db: DB) -> int:
        """Drop the memory history older than the horizon (:func:`projectors.convergence.settle`), in the
        batch's transaction; how many events were dropped."""
        if not self.partitioned or self.history_horizon_s is None:
            return 0
        return convergence.settle(self.sql(db), convergence.memory_replayer(
            lambda kind, again: self.memory_appliers[kind](db, again), self.refused),
            horizon_s=self.history_horizon_s, least=self.history_settle_least)

    def link_conflicts(self) -> list[dict[str, Any]]:
        """Links written from several regions, merged by merge order (docs/regions.md)."""
        with self._reading() as sql:
            return link_merge.link_conflicts(sql)

    def _event(self, db: DB, apply: Callable[[], str | None]) -> str | None:
        """Run one event's ``apply``; a backend wraps it where a failed statement must be undone its own way."""
        return apply()

    @staticmethod
    def _cause_refusal(sql: Sql, cause: str) -> str | None:
        refused = first(sql, "SELECT reason FROM rejected_events WHERE event_id = :e LIMIT 1", {"e": cause})
        seen = first(sql, "SELECT 1 AS seen FROM applied_events WHERE event_id = :e", {"e": cause}) is not None
        return cause_refusal(cause, None if refused is None else str(refused["reason"]), seen)

    @staticmethod
    def _reject(sql: Sql, record: LogRecord, reason: str) -> None:
        sql.run('INSERT INTO rejected_events (partition, "offset", event_id, type, reason) '
                'VALUES (:part, :off, :eid, :type, :reason) ON CONFLICT (partition, "offset") '
                "DO UPDATE SET event_id = excluded.event_id, type = excluded.type, reason = excluded.reason",
                {"part": record.partition, "off": record.offset, "eid": record.event.event_id,
                 "type": record.event.envelope.type, "reason": reason})

    @staticmethod
    def _position(sql: Sql) -> Clock:
        rows = sql.rows('SELECT partition, "offset" FROM tracking WHERE projection = :p', {"p": PROJECTION})
        return {str(r["partition"]): int(r["offset"]) for r in rows}

    def position(self) -> Clock:
        with self._reading() as sql:
            return self._position(sql)

    def _scalar(self, statement: str, params: Mapping[str, Any] | None = None) -> Any:
        with self._reading() as sql:
            row = first(sql, statement, params or {})
        return None if row is None else next(iter(row.values()))

    def refusal(self, partition: str, offset: int) -> str | None:
        reason = self._scalar('SELECT reason FROM rejected_events WHERE partition = :p AND "offset" = :o',
                              {"p": partition, "o": offset})
        return None if reason is None else str(reason)

    def vouched(self, records: Sequence[LogRecord]) -> set[tuple[str, int]]:
        if not self.shared or not records:
            return set()
        with self._reading() as sql:
            # The position first: refusals up to it were committed with it, so none is missed.
            position = self._position(sql)
            taken = [(r.partition, r.offset) for r in records if r.offset <= position.get(r.partition, 0)]
            spans: dict[str, tuple[int, int]] = {}
            for part, off in taken:
                low, high = spans.get(part, (off, off))
                spans[part] = (min(low, off), max(high, off))
            refused = {(part, int(row["offset"])) for part, (low, high) in spans.items() for row in sql.rows(
                'SELECT "offset" FROM rejected_events WHERE partition = :p AND "offset" BETWEEN :lo AND :hi',
                {"p": part, "lo": low, "hi": high})}
        return set(taken) - refused

    def rejected_count(self) -> int:
        return int(self._scalar("SELECT count(*) AS n FROM rejected_events"))

    def rejected_events(self, *, limit: int = 100) -> list[dict[str, object]]:
        with self._reading() as sql:
            return [dict(r) for r in sql.rows('SELECT partition, "offset", event_id, type, reason FROM '
                                              'rejected_events ORDER BY partition, "offset" LIMIT :limit',
                                              {"limit": limit})]

    def dim_violations(self) -> int:
        """memory.embedded events refused for carrying a vector of the wrong dimension."""
        return int(self._scalar("SELECT count(*) AS n FROM rejected_events WHERE type = 'memory.embedded' "
                                "AND substr(reason, 1, :n) = :prefix",
                                {"n": len(WRONG_DIMENSION), "prefix": WRONG_DIMENSION}))

    def title_conflicts(self) -> list[dict[str, str]]:
        """Memories kept under a conflict title: another region claimed theirs first (docs/regions.md)."""
        with self._reading() as sql:
            return convergence.title_conflicts(sql)

    def applied_count(self) -> int:
        return int(self._scalar("SELECT count(*) AS n FROM applied_events"))

    def meta(self, key: str) -> str | None:
        value = self._scalar("SELECT value FROM model_meta WHERE key = :k", {"k": key})
        return None if value is None else str(value)

    def set_meta(self, key: str, value: str) -> None:
        with self._writing() as sql:
            sql.run("INSERT INTO model_meta (key, value) VALUES (:k, :v) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value", {"k": key, "v": value})
