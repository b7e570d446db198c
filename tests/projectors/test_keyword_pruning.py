"""Pruned keyword recall on SQLite returns exactly what ranking every match returns (projectors/sqlite/pruning.py).

The corpus is random but built to exercise the pruning: Zipf-distributed words (so queries hold common words
with thousands of matches next to rare ones), repeated words, varied priority, access count, confidence, tier,
namespace and scope, ages from minutes to years, some memories updated in the future, some expired.
"""

from __future__ import annotations

import json
import math
import random
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from projectors.fts import fts_query
from projectors.queries import MemoryFilter
from projectors.sqlite import pruning, rank_first, text_queue
from projectors.sqlite import queries as sqlite_queries
from projectors.sqlite.queries import SQLiteMemoryQueries
from projectors.sqlite.schema import connect

NOW = datetime(2026, 6, 1, tzinfo=UTC)
_WORDS = [f"w{i}" for i in range(400)]
_WEIGHTS = [1.0 / (i + 1) ** 1.1 for i in range(len(_WORDS))]


def _ts(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def _text(rng: random.Random, n: int) -> str:
    return " ".join(rng.choices(_WORDS, _WEIGHTS, k=n))


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sqlite3.Connection]:
    """A file database: recall's split ranking (a second connection) needs one."""
    rng = random.Random(20261127)
    conn = connect(tmp_path_factory.mktemp("pruning") / "readmodel.db")
    rows = []
    for i in range(6000):
        created = NOW - timedelta(days=rng.choice([0.01, 0.5, 3, 40, 400, 2000]) * rng.random())
        updated = NOW + timedelta(days=rng.random() * 20) if rng.random() < 0.01 else created
        expires = _ts(NOW - timedelta(days=1)) if rng.random() < 0.02 else None
        meta = {"agent_id": rng.choice(["a", "b"]), "scope": rng.choice(["private", "collective", "team"])}
        rows.append((f"m{i:05d}", rng.choice(["short", "mid", "long"]), rng.choice(["ns", "ns/x", "team/a/b"]),
                     f"t{i} {_text(rng, rng.randrange(1, 4))}", _text(rng, rng.randrange(1, 30)),
                     json.dumps(rng.sample(["x", "y", "z"], rng.randrange(0, 3))), rng.randrange(1, 11),
                     rng.random(), rng.choice([0, 0, 0, 3, 80]), _ts(created), _ts(updated), expires,
                     json.dumps(meta)))
    conn.executemany("INSERT INTO memories (id, tier, namespace, title, content, tags, priority, confidence, "
                     "access_count, created_at, updated_at, expires_at, metadata) "
                     "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    text_queue.drain(conn)  # rows written by hand reach the FTS indexes as a batch's do
    conn.commit()
    yield conn
    conn.close()


def _queries(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        words = [rng.choice(_WORDS[:8]), *rng.choices(_WORDS, _WEIGHTS, k=rng.randrange(0, 4))]
        if rng.random() < 0.2:
            words.append(rng.choice(_WORDS[200:]) + "-rare")  # a phrase with no match
        rng.shuffle(words)
        out.append(" ".join(words))
    return out


_FILTERS = [
    MemoryFilter(now=_ts(NOW)),
    MemoryFilter(now=_ts(NOW), namespace="ns"),
    MemoryFilter(now=_ts(NOW), as_agent="team/a/b"),
    MemoryFilter(now=_ts(NOW), tier="long", tag="x"),
]


@pytest.mark.parametrize("split", [False, True], ids=["one-thread", "two-halves"])
@pytest.mark.parametrize("limit", [1, 10, 30])
@pytest.mark.parametrize("flt", _FILTERS, ids=["all", "namespace", "visibility", "tier+tag"])
def test_pruned_recall_equals_ranking_every_match(db: sqlite3.Connection, flt: MemoryFilter, limit: int,
                                                  split: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """Also when the matches are ranked in two rowid halves on two connections (the unpruned reference is
    always one query on one connection)."""
    monkeypatch.setattr(sqlite_queries, "SPLIT_FROM", 1 if split else 10**9)
    queries = SQLiteMemoryQueries(db)
    outcomes: list[pruning.Pruned | None] = []
    original = pruning.prune

    def counting(*args: Any, **kwargs: Any) -> pruning.Pruned | None:
        outcomes.append(original(*args, **kwargs))
        return outcomes[-1]

    monkeypatch.setattr(pruning, "prune", counting)
    for context in _queries(40, seed=limit):
        everything = queries._ranked(fts_query(context, use_or=True), flt, limit=limit, tier_bonus=True)
        pruned = queries.recall_keyword(context, flt, limit=limit)
        assert [(h.memory.id, h.score) for h in pruned] == [(h.memory.id, h.score) for h in everything], context
    if flt.tag is None:  # the tag filter leaves too few matches to prune
        assert any(outcomes), "the corpus must make recall prune, or this test proves nothing"
    queries.close()


def _answers(monkeypatch: pytest.MonkeyPatch, name: str) -> list[bool]:
    """Whether each call of ``rank_first.<name>`` answered (False: it left the query to the joined one)."""
    outcomes: list[bool] = []
    original = getattr(rank_first, name)

    def counting(*args: Any, **kwargs: Any) -> list[tuple[int, float]] | None:
        found: list[tuple[int, float]] | None = original(*args, **kwargs)
        outcomes.append(found is not None)
        return found

    monkeypatch.setattr(rank_first, name, counting)
    return outcomes


_BROAD = [
    MemoryFilter(now=_ts(NOW)),
    MemoryFilter(now=_ts(NOW), as_agent="solo"),  # sees a third (collective): the joined query must take over
    MemoryFilter(now=_ts(NOW), caller="a", hidden_prefixes=("team",)),
]


@pytest.mark.parametrize("split", [False, True], ids=["one-thread", "two-halves"])
@pytest.mark.parametrize("limit", [1, 10, 100])
@pytest.mark.parametrize("flt", _BROAD, ids=["expiry", "visibility", "caller+hidden"])
def test_lexical_ranked_first_equals_joined(db: sqlite3.Connection, flt: MemoryFilter, limit: int, split: bool,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """recall_lexical ranks the matches alone and filters the best (projectors/sqlite/rank_first.py): the same
    memories and scores as ranking the matches joined with the filter, also when too few of the best pass."""
    monkeypatch.setattr(sqlite_queries, "SPLIT_FROM", 1 if split else 10**9)
    monkeypatch.setenv(sqlite_queries.LEXICAL_INDEX_ENV, "off")  # FTS5's own path (the index: below)
    queries = SQLiteMemoryQueries(db)
    outcomes = _answers(monkeypatch, "passing")
    contexts = [[t.strip('"') for t in c.split()] for c in _queries(40, seed=limit + 7)]
    first = [[(h.memory.id, h.score) for h in queries.recall_lexical(terms, flt, limit=limit)] for terms in contexts]
    monkeypatch.setattr(rank_first, "is_broad", lambda _flt: False)
    joined = [[(h.memory.id, h.score) for h in queries.recall_lexical(terms, flt, limit=limit)] for terms in contexts]
    assert first == joined
    if flt.as_agent is None:
        assert any(outcomes), "ranking first must answer some queries, or this test proves nothing"
    else:
        assert not all(outcomes), "a filter that drops most of the best must fall back to the joined query"
    queries.close()


@pytest.mark.parametrize("limit", [1, 10, 100])
@pytest.mark.parametrize("flt", [*_FILTERS, *_BROAD[1:]],
                         ids=["all", "namespace", "visibility", "tier+tag", "solo", "caller+hidden"])
def test_lexical_index_equals_fts5(db: sqlite3.Connection, flt: MemoryFilter, limit: int,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """recall_lexical through the in-memory index (projectors/sqlite/lexical_index.py, filters tested on
    growing chunks of its ranking) gives FTS5's memories and scores, broad filter or narrow."""
    with_index = SQLiteMemoryQueries(db)
    assert with_index.lexical_ready(30), "the background build never finished"
    monkeypatch.setenv(sqlite_queries.LEXICAL_INDEX_ENV, "off")
    fts5 = SQLiteMemoryQueries(db)
    outcomes = _answers(monkeypatch, "passing_in_chunks")
    for context in _queries(40, seed=limit + 11):
        terms = [t.strip('"') for t in context.split()]
        ours = [(h.memory.id, h.score) for h in with_index.recall_lexical(terms, flt, limit=limit)]
        theirs = [(h.memory.id, h.score) for h in fts5.recall_lexical(terms, flt, limit=limit)]
        assert [i for i, _ in ours] == [i for i, _ in theirs], context
        assert [s for _, s in ours] == pytest.approx([s for _, s in theirs], rel=1e-9), context
    assert with_index._lexical is not None and with_index._lexical.rows, "the index never answered"
    if flt.tier is None and flt.as_agent is None:  # most matches pass: the index answers
        assert all(outcomes)
    if flt.tier is not None and limit == 100:  # a third of a third pass: the joined query takes over
        assert not all(outcomes)
    with_index.close()
    fts5.close()


def test_phrase_bound_bounds_fts5_bm25(db: sqlite3.Connection) -> None:
    """A single-phrase query's bm25 is that phrase's share of any query's bm25: it never exceeds the bound."""
    (rows,) = db.execute("SELECT max(rid) FROM memory_rank").fetchone()
    for word in [*_WORDS[:20], *_WORDS[100:400:25]]:
        phrase = f'"{word}"'
        (hits,) = db.execute("SELECT count(*) FROM memories_fts WHERE memories_fts MATCH ?", (phrase,)).fetchone()
        if not hits:
            continue
        (best,) = db.execute("SELECT max(-rank) FROM memories_fts WHERE memories_fts MATCH ?", (phrase,)).fetchone()
        bound = pruning.phrase_bound(rows, hits)
        assert 0 < best <= bound, word
        assert best > 0.4 * bound, "a bound far above every score would prune nothing"


def test_idf_is_fts5s() -> None:
    assert pruning.fts5_idf(100, 10) == pytest.approx(math.log(90.5 / 10.5))
    assert pruning.fts5_idf(100, 80) == 1e-6
