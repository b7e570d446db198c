"""The Postgres read model: applies verified events and their offsets in one transaction, and answers queries.

Many nodes may share one database. Each batch runs in one transaction that first locks this projection's row
in ``projections`` (``SELECT … FOR UPDATE``), then re-reads the tracked position: appliers on different nodes
serialize on that row, and whichever comes second finds the records already applied and skips them. Exactly
one applier changes the state for each event, and the offset commits with the change.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import IntegrityError

from infra.log import Clock, LogRecord, redact_url
from projectors import convergence, link_merge
from projectors.base import ApplyResult, Verdict
from projectors.graph_store import follow_replayed
from projectors.memory_model import MemoryReadModel
from projectors.postgres.archive import PostgresArchiveQueries
from projectors.postgres.domains import APPLIERS, MEMORY_APPLIERS
from projectors.postgres.errors import mapped_errors
from projectors.postgres.governance import PostgresGovernanceQueries
from projectors.postgres.graph import PostgresGraphQueries
from projectors.postgres.identity import PostgresIdentityQueries
from projectors.postgres.queries import PostgresMemoryQueries
from projectors.postgres.schema import connect, migrate
from projectors.postgres.sql import PostgresSql
from projectors.postgres.subscription_queries import PostgresSubscriptionQueries
from projectors.postgres.vector_search import PgVectorSearch
from projectors.rules import WRONG_DIMENSION, Inapplicable, cause_refusal
from schemas import SchemaError, decode_payload

__all__ = ["PostgresReadModel"]

PROJECTION = "memories"
VECTOR_INDEX = "memory_vectors_hnsw"


class _Retry(Exception):
    """A statement failed on a constraint: redo the batch with a savepoint around each event."""


class PostgresReadModel(MemoryReadModel):
    def __init__(self, url: str, *, engine: Engine | None = None) -> None:
        """Open (and migrate to the newest schema) the read model at ``url`` (``postgresql+psycopg://…``)."""
        self.url = url
        self.engine = engine or connect(url)
        migrate(self.engine)
        with mapped_errors(), self.engine.begin() as conn:
            conn.execute(text("INSERT INTO projections (name) VALUES (:p) ON CONFLICT DO NOTHING"),
                         {"p": PROJECTION})
        self.queries: PostgresMemoryQueries = PostgresMemoryQueries(self.engine)
        self.subscriptions = PostgresSubscriptionQueries(self.engine)
        self.archive = PostgresArchiveQueries(self.engine)
        self.governance = PostgresGovernanceQueries(self.engine)
        self.graph = PostgresGraphQueries(self.engine)
        self.identity = PostgresIdentityQueries(self.engine)

    @property
    def location(self) -> str:
        return redact_url(self.url)

    def vector_search(self) -> PgVectorSearch:
        """pgvector over the shared vectors: nodes on this model need no local HNSW index."""
        return PgVectorSearch(self.queries)

    def position(self) -> Clock:
        with mapped_errors(), self.engine.connect() as conn:
            return self._position(conn)

    @staticmethod
    def _position(conn: Connection) -> Clock:
        rows = conn.execute(text('SELECT partition, "offset" FROM tracking WHERE projection = :p'), {"p": PROJECTION})
        return {r[0]: int(r[1]) for r in rows}

    def apply_batch(self, verdicts: Sequence[Verdict]) -> ApplyResult:
        with mapped_errors():
            try:
                return self._batch(verdicts, savepoints=False)
            except _Retry:
                # Postgres aborts the whole transaction on a failed statement; SQLite undoes only the statement.
                # Appliers check before they write, so this is rare: then each event gets its own savepoint.
                return self._batch(verdicts, savepoints=True)

    def _batch(self, verdicts: Sequence[Verdict], *, savepoints: bool) -> ApplyResult:
        applied = skipped = rejected = 0
        with self.engine.begin() as conn:
            conn.execute(text("SELECT name FROM projections WHERE name = :p FOR UPDATE"), {"p": PROJECTION})
            position = self._position(conn)
            fresh = self._claim_event_ids(conn, verdicts, position)
            for verdict in verdicts:
                record = verdict.record
                if record.offset <= position.get(record.partition, 0):
                    skipped += 1
                    continue
                reason = verdict.rejected or self._apply(conn, record, fresh, savepoints=savepoints)
                if reason == "duplicate":
                    skipped += 1
                elif reason:
                    self._reject(conn, record, reason)
                    rejected += 1
                else:
                    applied += 1
                position[record.partition] = record.offset
            self._settle_history(conn)
            conn.execute(text('INSERT INTO tracking (projection, partition, "offset") VALUES (:p, :part, :off) '
                              'ON CONFLICT (projection, partition) DO UPDATE SET "offset" = excluded."offset"'),
                         [{"p": PROJECTION, "part": part, "off": off} for part, off in position.items()])
        return ApplyResult(applied=applied, skipped=skipped, rejected=rejected)

    def _settle_history(self, conn: Connection) -> int:
        """Drop the memory history older than the horizon (:func:`projectors.convergence.settle`), in the
        batch's transaction; how many events were dropped."""
        if not self.partitioned or self.history_horizon_s is None:
            return 0
        return convergence.settle(PostgresSql(conn), convergence.memory_replayer(
            lambda kind, again: MEMORY_APPLIERS[kind](conn, again), (Inapplicable,)),
            horizon_s=self.history_horizon_s, least=self.history_settle_least)

    @staticmethod
    def _claim_event_ids(conn: Connection, verdicts: Sequence[Verdict], position: Clock) -> set[str]:
        """Record, in one statement, the ids of every event this batch will try to apply; return those that
        were new (the others were applied before, from another offset: re-sent events)."""
        ids = [v.record.event.event_id for v in verdicts
               if v.rejected is None and v.record.offset > position.get(v.record.partition, 0)]
        if not ids:
            return set()
        rows = conn.execute(text("INSERT INTO applied_events (event_id) SELECT unnest(CAST(:ids AS text[])) "
                                 "ON CONFLICT DO NOTHING RETURNING event_id"), {"ids": ids})
        return {r[0] for r in rows}

    def _apply(self, conn: Connection, record: LogRecord, fresh: set[str], *, savepoints: bool) -> str | None:
        """Apply one record; return why it was not applied, or None."""
        envelope = record.event.envelope
        if envelope.event_id not in fresh:
            return "duplicate"
        fresh.discard(envelope.event_id)  # the same id twice in one batch: the second is a duplicate
        if envelope.cause is not None and (refused := self._cause_refusal(conn, envelope.cause)) is not None:
            convergence.stamp(PostgresSql(conn), record)  # refused or not, it holds its place in merge order
            return refused
        try:
            payload = decode_payload(envelope.type, envelope.payload)
        except SchemaError as exc:
            return str(exc)
        applier = APPLIERS.get(envelope.type)
        if applier is None:
            return None  # an event of a type this read model keeps nothing of
        sql = PostgresSql(conn)

        def apply() -> str | None:
            return convergence.apply_event(sql, record, payload, lambda: applier(conn, payload, record),
                                           lambda kind, again: MEMORY_APPLIERS[kind](conn, again), (Inapplicable,),
                                           partitioned=self.partitioned,
                                           replayed=lambda ids: follow_replayed(sql, ids, record.offset))

        try:
            if savepoints:
                with conn.begin_nested():
                    return apply()
            return apply()
        except IntegrityError as exc:
            if not savepoints:
                raise _Retry from exc
            return str(exc.orig)

    @staticmethod
    def _cause_refusal(conn: Connection, cause: str) -> str | None:
        refused = conn.execute(text("SELECT reason FROM rejected_events WHERE event_id = :e LIMIT 1"),
                               {"e": cause}).scalar()
        seen = conn.execute(text("SELECT 1 FROM applied_events WHERE event_id = :e"), {"e": cause}).scalar() is not None
        return cause_refusal(cause, None if refused is None else str(refused), seen)

    @staticmethod
    def _reject(conn: Connection, record: LogRecord, reason: str) -> None:
        conn.execute(text('INSERT INTO rejected_events (partition, "offset", event_id, type, reason) '
                          "VALUES (:part, :off, :eid, :type, :reason) ON CONFLICT (partition, \"offset\") "
                          "DO UPDATE SET event_id = excluded.event_id, type = excluded.type, reason = excluded.reason"),
                     {"part": record.partition, "off": record.offset, "eid": record.event.event_id,
                      "type": record.event.envelope.type, "reason": reason})

    @contextlib.contextmanager
    def bulk(self) -> Iterator[None]:
        """For a replay into an empty model: the vector index is dropped, then built once at the end from every
        vector (inserting into HNSW one vector at a time costs more than the rest of applying together)."""
        with mapped_errors(), self.engine.begin() as conn:
            ddl = conn.execute(text("SELECT indexdef FROM pg_indexes WHERE indexname = :n"),
                               {"n": VECTOR_INDEX}).scalar()
            if ddl is not None:
                conn.execute(text(f"DROP INDEX {VECTOR_INDEX}"))
        yield
        if ddl is not None:
            with mapped_errors(), self.engine.begin() as conn:
                conn.execute(text("SET LOCAL maintenance_work_mem = '512MB'"))
                conn.execute(text(ddl))

    def _scalar(self, sql: str, params: dict[str, Any] | None = None) -> Any:
        with mapped_errors(), self.engine.connect() as conn:
            return conn.execute(text(sql), params or {}).scalar()

    def refusal(self, partition: str, offset: int) -> str | None:
        reason = self._scalar('SELECT reason FROM rejected_events WHERE partition = :p AND "offset" = :o',
                              {"p": partition, "o": offset})
        return None if reason is None else str(reason)

    def rejected_count(self) -> int:
        return int(self._scalar("SELECT count(*) FROM rejected_events"))

    def rejected_events(self, *, limit: int = 100) -> list[dict[str, object]]:
        with mapped_errors(), self.engine.connect() as conn:
            rows = conn.execute(text('SELECT partition, "offset", event_id, type, reason FROM rejected_events '
                                     'ORDER BY partition, "offset" LIMIT :limit'), {"limit": limit}).mappings()
            return [dict(r) for r in rows]

    def dim_violations(self) -> int:
        return int(self._scalar("SELECT count(*) FROM rejected_events WHERE type = 'memory.embedded' "
                                "AND starts_with(reason, :prefix)", {"prefix": WRONG_DIMENSION}))

    def title_conflicts(self) -> list[dict[str, str]]:
        """Memories kept under a conflict title: another region claimed theirs first (docs/regions.md)."""
        with mapped_errors(), self.engine.connect() as conn:
            return convergence.title_conflicts(PostgresSql(conn))

    def link_conflicts(self) -> list[dict[str, Any]]:
        """Links written from several regions, merged by merge order (docs/regions.md)."""
        with mapped_errors(), self.engine.connect() as conn:
            return link_merge.link_conflicts(PostgresSql(conn))

    def applied_count(self) -> int:
        return int(self._scalar("SELECT count(*) FROM applied_events"))

    def meta(self, key: str) -> str | None:
        value = self._scalar("SELECT value FROM model_meta WHERE key = :k", {"k": key})
        return None if value is None else str(value)

    def set_meta(self, key: str, value: str) -> None:
        with mapped_errors(), self.engine.begin() as conn:
            conn.execute(text("INSERT INTO model_meta (key, value) VALUES (:k, :v) "
                              "ON CONFLICT (key) DO UPDATE SET value = excluded.value"), {"k": key, "v": value})

    def close(self) -> None:
        self.engine.dispose()
