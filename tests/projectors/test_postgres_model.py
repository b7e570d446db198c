"""The Postgres read model passes the same contracts as SQLite, gives the same answers from the same log, and
keeps exactly one applier per event when several nodes share it."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from infra.log import LogRecord
from projectors import MemoryFilter, ReadModel, ScoredMemory, SQLiteReadModel, Verdict
from projectors.postgres import PostgresReadModel, current_revision, head_revision, migrate
from projectors.postgres.queries import KEYWORD_SCALE, keyword_bound, tsquery
from projectors.postgres.schema import connect
from projectors.queries import julian_day
from schemas import Memory, encode_payload
from schemas.events import MemoryStored
from tests.contract.read_model_contract import ReadModelContract, load
from tests.contract.recorded_log import NOW, recorded_log
from tests.contract.tracking_contract import TrackingContract, record
from tests.factories import node_key, signed


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


def test_lexical_recall_matches_the_same_memories_on_a_zero_to_one_scale(
        both: tuple[SQLiteReadModel, PostgresReadModel]) -> None:
    """Our ranking's lexical half (issue #15): the same matches on both backends, each score relevance alone
    divided by the most the query could score."""
    lite, pg = both
    flt = MemoryFilter(now=NOW)
    for terms in (["deploy"], ["deploy", "friday"], ["hnsw", "espresso"], ["ops", "plan"], ["nothing-here"], []):
        lite_hits, pg_hits = lite.queries.recall_lexical(terms, flt, limit=20), pg.queries.recall_lexical(
            terms, flt, limit=20)
        assert {h.memory.id for h in pg_hits} == {h.memory.id for h in lite_hits}, terms
        assert all(0.0 < h.score <= 1.0 for h in [*lite_hits, *pg_hits]), terms
        assert [h.score for h in lite_hits] == sorted((h.score for h in lite_hits), reverse=True)


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
        assert migrate(engine) == head_revision()
        assert current_revision(engine) == head_revision()
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


def _varied_memories(n: int) -> list[Memory]:
    """Memories whose static score parts (priority, access count, confidence, tier, age) and keyword counts vary."""
    rng = random.Random(5)
    words = ["deploy", "rollback", "queue", "index", "cache", "plain", "text"]
    out = []
    for i in range(n):
        day = f"2026-05-{rng.randint(1, 28):02d}T08:00:00+00:00"
        out.append(Memory(id=f"r{i:04d}", tier=rng.choice(["short", "mid", "long"]), namespace=rng.choice(["a", "b"]),
                          title=f"note {i}", content=" ".join(rng.choice(words) for _ in range(rng.randint(1, 40))),
                          tags=[], priority=rng.randint(1, 10), confidence=round(rng.random(), 2), source="api",
                          access_count=rng.randint(0, 60), created_at=day, updated_at=day, metadata={}))
    return out


def test_recall_ranks_only_what_can_reach_the_top_with_the_same_answer(pg_model: PostgresReadModel,
                                                                       tmp_path: Path) -> None:
    """Keyword recall on Postgres skips matches whose static score part is too low to reach the top (an exact
    bound); the answer equals ranking every match, for any limit and filter."""
    key = node_key(tmp_path)
    pg_model.apply_batch([Verdict(LogRecord("p", i + 1, signed(key, event_type=MemoryStored.TYPE,
                                                              payload=encode_payload(MemoryStored(m)))))
                          for i, m in enumerate(_varied_memories(400))])
    queries = pg_model.queries
    pruned_somewhere = False
    for context in ("deploy", "deploy queue", "rollback cache index", "nothing deploy", "plain text"):
        for limit in (1, 5, 10, 50):
            for namespace in (None, "a"):
                flt = MemoryFilter(now=NOW, namespace=namespace)
                params: dict[str, Any] = {"limit": limit, "now_jd": julian_day(NOW), "scale": KEYWORD_SCALE}
                q = tsquery(context, params, use_or=True)
                ns = "" if namespace is None else " AND namespace = :ns"
                params["ns"] = namespace
                with pg_model.engine.connect() as conn:
                    every = conn.execute(text(
                        f"SELECT id, ts_rank(tsv, {q}) * :scale + boost + tier_bonus + "
                        f"(1.0 / (1.0 + (:now_jd - updated_jd) * 0.1)) AS score FROM memories WHERE tsv @@ {q}{ns} "
                        "ORDER BY score DESC, seq LIMIT :limit"), params).all()
                    matches = conn.execute(text(f"SELECT count(*) FROM memories WHERE tsv @@ {q}{ns}"),
                                           params).scalar_one()
                hits = queries.recall_keyword(context, flt, limit=limit)
                assert [(h.memory.id, round(h.score, 9)) for h in hits] == [(r[0], round(r[1], 9)) for r in every]
                floor_params: dict[str, Any] = {"limit": limit, "now_jd": julian_day(NOW), "scale": KEYWORD_SCALE}
                probe_q = tsquery(context, floor_params, use_or=True)
                assert probe_q is not None
                cond = queries._recall_floor(
                    f"ts_rank(m.tsv, {probe_q}) * :scale + m.boost + m.tier_bonus + "
                    "(1.0 / (1.0 + (:now_jd - m.updated_jd) * 0.1))", probe_q, f"m.tsv @@ {probe_q}", floor_params,
                    limit)
                if cond:
                    with pg_model.engine.connect() as conn:
                        kept = conn.execute(text(f"SELECT count(*) FROM memories m WHERE m.tsv @@ {probe_q}{cond}"),
                                            floor_params).scalar_one()
                    pruned_somewhere |= kept < matches
    assert pruned_somewhere, "the bound never excluded a match: the test data does not exercise it"


def test_ts_rank_never_exceeds_the_bound(pg_model: PostgresReadModel) -> None:
    """Recall's pruning rests on keyword_bound: 0.1 for an OR or a single word at the top of the query, 1 for a
    phrase (one hyphenated token), however often a word repeats and whichever words match."""
    docs = ["deploy " * 3000, "deploy rollback " * 1500, "x-ray deploy-order " * 500, "a", "deploy", "it's ok"]
    queries = ["deploy", "deploy rollback", "deploy x-ray zzz", "deploy-order", "a deploy rollback x-ray",
               "-- deploy-order", "it's", "o'neil deploy", "deploy-order ***"]
    bounds = {}
    with pg_model.engine.connect() as conn:
        for doc in docs:
            for query in queries:
                params: dict[str, Any] = {"doc": doc}
                q = tsquery(query, params, use_or=True)
                rank, shown = conn.execute(text(f"SELECT ts_rank(to_tsvector('ai_memory', :doc), {q}), "
                                                f"CAST({q} AS text)"), params).one()
                bounds[query] = keyword_bound(shown)
                assert rank <= bounds[query] * (1 + 1e-6), (doc[:20], query, rank, shown)
    assert bounds["deploy-order"] == bounds["-- deploy-order"] == bounds["it's"] == 1.0
    assert bounds["deploy"] == bounds["deploy x-ray zzz"] == bounds["o'neil deploy"] == 0.1
