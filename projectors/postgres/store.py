"""The Postgres read model: applies verified events and their offsets in one transaction, and answers queries.

Many nodes may share one database. Each batch runs in one transaction that first locks this projection's row
in ``projections`` (``SELECT … FOR UPDATE``), then re-reads the tracked position: appliers on different nodes
serialize on that row, and whichever comes second finds the records already applied and skips them. Exactly
one applier changes the state for each event, and the offset commits with the change.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import IntegrityError

from infra.log import Clock, LogRecord, redact_url
from projectors.base import ApplyResult, Verdict
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
from projectors.rules import Inapplicable
from projectors.sql import Sql
from projectors.sql_model import PROJECTION, FirstSight, SqlReadModel

__all__ = ["PostgresReadModel"]

VECTOR_INDEX = "memory_vectors_hnsw"
#: Whether the batch under way runs each event in its own savepoint (the retry after a failed statement);
#: a context variable, not an attribute, so batches in several threads on one model keep their own.
_SAVEPOINTS: ContextVar[bool] = ContextVar("savepoints", default=False)


class _Retry(Exception):
    """A statement failed on a constraint: redo the batch with a savepoint around each event."""


class PostgresReadModel(SqlReadModel[Connection]):
    appliers = APPLIERS
    memory_appliers = MEMORY_APPLIERS
    refused = (Inapplicable,)
    shared = True

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

    @staticmethod
    def sql(db: Connection) -> PostgresSql:
        return PostgresSql(db)

    @contextlib.contextmanager
    def _reading(self) -> Iterator[Sql]:
        with mapped_errors(), self.engine.connect() as conn:
            yield PostgresSql(conn)

    @contextlib.contextmanager
    def _writing(self) -> Iterator[Sql]:
        with mapped_errors(), self.engine.begin() as conn:
            yield PostgresSql(conn)

    def apply_batch(self, verdicts: Sequence[Verdict]) -> ApplyResult:
        with mapped_errors():
            try:
                return self._locked_batch(verdicts, savepoints=False)
            except _Retry:
                # Postgres aborts the whole transaction on a failed statement; SQLite undoes only the statement.
                # Appliers check before they write, so this is rare: then each event gets its own savepoint.
                return self._locked_batch(verdicts, savepoints=True)

    def _locked_batch(self, verdicts: Sequence[Verdict], *, savepoints: bool) -> ApplyResult:
        token = _SAVEPOINTS.set(savepoints)
        try:
            with self.engine.begin() as conn:
                conn.execute(text("SELECT name FROM projections WHERE name = :p FOR UPDATE"), {"p": PROJECTION})
                return self._batch(conn, verdicts)
        finally:
            _SAVEPOINTS.reset(token)

    def _first_sights(self, db: Connection, verdicts: Sequence[Verdict], position: Clock) -> FirstSight:
        """Record, in one statement, the ids of every event this batch will try to apply; those that were new
        are first sights (the others were applied before, from another offset: re-sent events)."""
        ids = [v.record.event.event_id for v in verdicts
               if v.rejected is None and v.record.offset > position.get(v.record.partition, 0)]
        fresh: set[str] = set()
        if ids:
            fresh = set(db.execute(text("INSERT INTO applied_events (event_id) SELECT unnest(CAST(:ids AS text[])) "
                                        "ON CONFLICT DO NOTHING RETURNING event_id"), {"ids": ids}).scalars())

        def first_sight(record: LogRecord) -> bool:
            if record.event.event_id not in fresh:
                return False
            fresh.discard(record.event.event_id)  # the same id twice in one batch: the second is a duplicate
            return True

        return first_sight

    def _event(self, db: Connection, apply: Callable[[], str | None]) -> str | None:
        savepoints = _SAVEPOINTS.get()
        try:
            if savepoints:
                with db.begin_nested():
                    return apply()
            return apply()
        except IntegrityError as exc:
            if not savepoints:
                raise _Retry from exc
            return str(exc.orig)

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

    def close(self) -> None:
        self.engine.dispose()
