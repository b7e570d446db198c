"""The Postgres read model passes the same contracts as SQLite, gives the same answers from the same log, and
keeps exactly one applier per event when several nodes share it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from projectors import MemoryFilter, ReadModel, ScoredMemory, SQLiteReadModel, Verdict
from projectors.postgres import PostgresReadModel, current_revision, migrate
from projectors.postgres.schema import connect
from tests.contract.read_model_contract import ReadModelContract, load
from tests.contract.recorded_log import NOW, recorded_log
from tests.contract.tracking_contract import TrackingContract, record
from tests.factories import node_key


@pytest.fixture
def pg_model(postgres_url: str) -> Iterator[PostgresReadModel]:
    m = PostgresReadModel(postgres_url)
    yield m
    m.close()


class TestPostgresTracking(TrackingContract):
    @pytest.fixture
    def model(self, pg_model: PostgresReadModel) -> PostgresReadModel:
        return pg_model

    def count_memories(self, model: ReadModel) -> int:
        assert isinstance(model, PostgresReadModel)
        return len(model.queries.all_memories())


class TestPostgresReadModel(ReadModelContract):
    @pytest.fixture
    def model(self, pg_model: PostgresReadModel) -> PostgresReadModel:
        return pg_model


@pytest.fixture
def both(pg_model: PostgresReadModel, tmp_path: Path) -> Iterator[tuple[SQLiteReadModel, PostgresReadModel]]:
    lite = SQLiteReadModel(tmp_path / "rm.db")
    records = recorded_log(tmp_path)
    load(lite, records)
    load(pg_model, records)
    yield lite, pg_model
    lite.close()


def test_same_log_same_rows_and_answers(both: tuple[SQLiteReadModel, PostgresReadModel]) -> None:
    lite, pg = both
    assert pg.queries.all_memories() == lite.queries.all_memories()
    assert pg.rejected_events() == lite.rejected_events()
    assert pg.applied_count() == lite.applied_count() and pg.dim_violations() == lite.dim_violations()
    flt = MemoryFilter(now=NOW)
    for query in ("deploy", "deploy friday", "hnsw espresso", "tie", "ops plan", "CAFÉ", "nothing-here"):
        assert {m.id for m in pg.queries.search(query, flt, limit=20)} == {
            m.id for m in lite.queries.search(query, flt, limit=20)}, query
        assert {h.memory.id for h in pg.queries.recall_keyword(query, flt, limit=20)} == {
            h.memory.id for h in lite.queries.recall_keyword(query, flt, limit=20)}, query
    assert pg.queries.list_memories(flt, limit=50, offset=0) == lite.queries.list_memories(flt, limit=50, offset=0)
    assert pg.queries.namespaces(NOW) == lite.queries.namespaces(NOW)
    assert pg.queries.export(NOW) == lite.queries.export(NOW)
    assert pg.queries.vectors(["m10", "m01"]) == lite.queries.vectors(["m10", "m01"])
    assert pg.queries.similar_titles("deploy notes", "proj/a") == lite.queries.similar_titles("deploy notes", "proj/a")
    stats_pg, stats_lite = pg.queries.stats(NOW, NOW), lite.queries.stats(NOW, NOW)
    assert (stats_pg.total, stats_pg.by_tier, stats_pg.by_namespace) == (
        stats_lite.total, stats_lite.by_tier, stats_lite.by_namespace)


def _ids(hits: list[ScoredMemory]) -> list[str]:
    return [h.memory.id for h in hits]


def test_order_agrees_unless_the_keyword_term_decides(both: tuple[SQLiteReadModel, PostgresReadModel]) -> None:
    """The documented difference: the keyword term is bm25 on SQLite, ts_rank x KEYWORD_SCALE on Postgres; the
    rest of the original's composite score is the same. Where the keyword term does not decide, the order is
    the same; where it does, this pins how the two differ."""
    lite, pg = both
    flt = MemoryFilter(now=NOW)
    for query in ("hnsw espresso", "ops plan", "deploy friday"):
        assert _ids(pg.queries.recall_keyword(query, flt, limit=20)) == _ids(
            lite.queries.recall_keyword(query, flt, limit=20)), query
    # "deploy" is in 5 of the 7 memories: bm25's idf is ~0 for so common a word, so SQLite ranks by the rest of
    # the score (m10's recency beats m02). Postgres has no idf: m02 says "deploy" twice and comes before m10.
    assert _ids(lite.queries.recall_keyword("deploy", flt, limit=20)) == ["m01", "m10", "m02", "m05", "m04"]
    assert _ids(pg.queries.recall_keyword("deploy", flt, limit=20)) == ["m01", "m02", "m10", "m05", "m04"]
    for a, b in zip(lite.queries.recall_keyword("ops plan", flt, limit=20),
                    pg.queries.recall_keyword("ops plan", flt, limit=20), strict=True):
        assert abs(a.score - b.score) < 3.0  # the keyword terms weigh about the same against the rest


def test_upgrade_from_the_first_revision(postgres_url: str, tmp_path: Path) -> None:
    engine = connect(postgres_url)
    try:
        assert migrate(engine, "r0001") == "r0001"
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO memories (id, tier, namespace, title, content, created_at, updated_at) "
                              "VALUES ('old', 'long', 'ns', 'from r0001', 'kept across the upgrade', "
                              "'2026-05-01T00:00:00+00:00', '2026-05-01T00:00:00+00:00')"))
        assert migrate(engine) == "r0004_tombstones"
        assert current_revision(engine) == "r0004_tombstones"
    finally:
        engine.dispose()
    model = PostgresReadModel(postgres_url)
    try:
        hits = model.queries.recall_keyword("upgrade", MemoryFilter(now=NOW), limit=5)
        assert [h.memory.id for h in hits] == ["old"]
        assert hits[0].score > 3.0 + 0.5 * 5  # tier bonus + boost come from r0002's columns, filled for old rows
    finally:
        model.close()


def test_concurrent_appliers_apply_each_event_once(postgres_url: str, tmp_path: Path) -> None:
    """Two models (as two nodes would) race over the same records: each event is applied by exactly one."""
    key = node_key(tmp_path)
    verdicts = [Verdict(record(key, i, f"t{i}")) for i in range(1, 61)]
    models = [PostgresReadModel(postgres_url) for _ in range(2)]
    applied = [0, 0]

    def run(n: int) -> None:
        for start in range(0, 60, 7):
            applied[n] += models[n].apply_batch(verdicts[start:start + 7]).applied

    threads = [threading.Thread(target=run, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert sum(applied) == 60
        assert models[0].position() == models[1].position() == {"p": 60}
        assert len(models[0].queries.all_memories()) == 60 and models[0].applied_count() == 60
    finally:
        for m in models:
            m.close()


def test_constraint_failure_falls_back_to_savepoints(pg_model: PostgresReadModel, tmp_path: Path) -> None:
    """A statement refused by a constraint aborts a Postgres transaction; the batch is redone with a savepoint
    per event, so only the bad event is refused (as on SQLite) and the rest of the batch applies."""
    with pg_model.engine.begin() as conn:
        conn.execute(text("ALTER TABLE memories ADD CONSTRAINT no_x CHECK (title <> 'x')"))
    key = node_key(tmp_path)
    result = pg_model.apply_batch([Verdict(record(key, 1, "a")), Verdict(record(key, 2, "x")),
                                   Verdict(record(key, 3, "b"))])
    assert (result.applied, result.rejected) == (2, 1)
    assert pg_model.position() == {"p": 3}
    assert "no_x" in str(pg_model.rejected_events()[0]["reason"])


def test_recorded_log_is_long_enough() -> None:
    assert len(recorded_log(Path("/tmp"))) == 25


def test_keyword_queries_use_the_gin_index(pg_model: PostgresReadModel, tmp_path: Path) -> None:
    """With the default planner costs a query matching a few percent of the rows became a sequential scan."""
    key = node_key(tmp_path)
    pg_model.apply_batch([Verdict(record(key, i, f"common {i % 20} word{i}")) for i in range(1, 2001)])
    with pg_model.engine.connect() as conn:
        conn.execute(text("ANALYZE memories"))
        plan = "\n".join(r[0] for r in conn.execute(text(
            "EXPLAIN SELECT id FROM memories WHERE tsv @@ (phraseto_tsquery('ai_memory', '7') || "
            "phraseto_tsquery('ai_memory', 'word5'))")))
    assert "memories_tsv" in plan, plan
