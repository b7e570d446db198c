"""The in-memory lexical index ranks exactly as FTS5's bm25 (projectors/sqlite/lexical_index.py).

Every check compares the index with FTS5 itself on the same database: the same rowids in the same order and
the same scores (within 1e-9, relative), on random corpora of words with repeats, case, accents, other scripts
and punctuation, changed by inserts, updates and deletes from the index's own connection, another connection
and another process, across a bulk rebuild and a feed pruned past the index.
"""

from __future__ import annotations

import json
import random
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from projectors.queries import MemoryFilter
from projectors.sqlite import lexical_postings, text_queue
from projectors.sqlite.lexical_index import LexicalIndex
from projectors.sqlite.queries import SQLiteMemoryQueries
from projectors.sqlite.schema import connect, drop_index_triggers, restore_index_triggers
from projectors.sqlite.unicode61 import Unicode61

# Plain words (Zipf-weighted: some match most rows), case and diacritic variants FTS5 folds together, other
# scripts, and words FTS5 splits (a query phrase of several tokens is left to FTS5).
_PLAIN = [f"w{i}" for i in range(60)]
_ODD = ["café", "Cafe", "CAFÉ", "naïve", "NAIVE", "straße", "Über", "uber", "Ångström", "angstrom", "ǅemal",
        "日本語", "Ωmega", "ωmega", "١٢٣", "e-mail", "don't", "x_y", "v0.7", "ﬁne", "Ⅻ", "soft\u00adhyphen"]
_SEPARATORS = [" ", " ", " ", ", ", ".\n", " - ", "—", "'", "(", ") "]
_WEIGHTS = [1.0 / (i + 1) for i in range(len(_PLAIN))] + [0.05] * len(_ODD)


def _text(rng: random.Random, n: int) -> str:
    words = rng.choices(_PLAIN + _ODD, _WEIGHTS, k=n)
    return "".join(w + rng.choice(_SEPARATORS) for w in words).strip()


def _row(rng: random.Random, key: str) -> tuple[str, str, str, str]:
    tags = json.dumps(rng.sample(["x", "Café", "w1", "tag-two"], rng.randrange(0, 3)), ensure_ascii=False)
    return key, f"{key} {_text(rng, rng.randrange(1, 4))}", _text(rng, rng.randrange(0, 25)), tags


def _insert(db: sqlite3.Connection, rows: list[tuple[str, str, str, str]]) -> None:
    db.executemany("INSERT INTO memories (id, tier, namespace, title, content, tags, created_at, updated_at) "
                   "VALUES (?, 'long', 'ns', ?, ?, ?, '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')", rows)
    text_queue.drain(db)  # as the read model's apply does before it commits


def _change(db: sqlite3.Connection, rng: random.Random, tag: str) -> None:
    """Insert, update or delete a few rows (the titles stay unique: the namespace holds each once)."""
    ids = [r[0] for r in db.execute("SELECT id FROM memories")]
    for _ in range(rng.randrange(1, 6)):
        op = rng.random()
        if op < 0.4 or not ids:
            key = f"{tag}-{rng.getrandbits(40)}"
            _insert(db, [_row(rng, key)])
        elif op < 0.75:
            column = rng.choice(["content", "tags", "title"])
            value = _text(rng, 5) if column == "content" else f"{rng.getrandbits(40)} {_text(rng, 2)}"
            value = json.dumps([_text(rng, 1)]) if column == "tags" else value
            db.execute(f"UPDATE memories SET {column} = ? WHERE id = ?", (value, rng.choice(ids)))
        else:
            db.execute("DELETE FROM memories WHERE id = ?", (rng.choice(ids),))
    text_queue.drain(db)


def _fts5(db: sqlite3.Connection, terms: list[str], k: int) -> list[tuple[int, float]]:
    match = " OR ".join(f'"{t}"' for t in terms)
    return [(int(r[0]), float(r[1])) for r in db.execute(
        "SELECT rowid, -bm25(memories_fts) AS s FROM memories_fts WHERE memories_fts MATCH ? "
        "ORDER BY s DESC, rowid LIMIT ?", (match, k))]


def _same(index: LexicalIndex, db: sqlite3.Connection, terms: list[str], k: int) -> bool:
    """The index's top ``k`` is FTS5's (True), or the index leaves the query to FTS5 (False)."""
    matches = index.matches(db, terms)
    if matches is None:
        return False
    ours, theirs = matches.best(k), _fts5(db, terms, k)
    assert [r for r, _ in ours] == [r for r, _ in theirs], terms
    for (_, a), (_, b) in zip(ours, theirs, strict=True):
        assert a == pytest.approx(b, rel=1e-9), terms
    for term, hits in zip(terms, matches.hits, strict=True):
        (n,) = db.execute("SELECT count(*) FROM memories_fts WHERE memories_fts MATCH ?", (f'"{term}"',)).fetchone()
        assert hits == n, term
    return True


def _terms(rng: random.Random) -> list[str]:
    words = [w.lower().strip("'") for w in rng.choices(_PLAIN + _ODD, _WEIGHTS, k=rng.randrange(1, 5))]
    return list(dict.fromkeys(w for w in words if w))


@pytest.fixture
def path() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="lexical-") as tmp:
        yield Path(tmp) / "readmodel.db"


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_random_corpora_and_writers_rank_as_fts5(seed: int) -> None:
    """Two connections write (the index's own and another); the index answers as FTS5 after each change."""
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory(prefix="lexical-") as tmp:
        mine, other = connect(Path(tmp) / "m.db"), connect(Path(tmp) / "m.db")
        _insert(mine, [_row(rng, f"r{i}") for i in range(rng.randrange(0, 200))])
        index = LexicalIndex()
        answered = 0
        for step in range(12):
            _change(rng.choice([mine, other]), rng, f"s{step}")
            for _ in range(3):
                answered += _same(index, mine, _terms(rng), rng.choice([1, 5, 50, 400]))
        index.close()
        mine.close()
        other.close()
    assert answered, "every query fell back to FTS5: the index was not tested"


def test_another_process_writes(path: Path) -> None:
    db = connect(path)
    rng = random.Random(7)
    _insert(db, [_row(rng, f"r{i}") for i in range(300)])
    index = LexicalIndex()
    assert _same(index, db, ["w0", "w3"], 20)
    script = ("import random, sys; from tests.projectors.test_lexical_index import _change; "
              "from projectors.sqlite.schema import connect; db = connect(sys.argv[1]); rng = random.Random(3)\n"
              "for i in range(40): _change(db, rng, f'p{i}')")
    subprocess.run([sys.executable, "-c", script, str(path)], check=True, timeout=60)
    (changes,) = db.execute("SELECT count(*) FROM memory_changes").fetchone()
    assert changes > 40
    for terms in (["w0", "w3"], ["w1"], ["café", "w5"], ["naive", "straße", "日本語"]):
        assert _same(index, db, terms, 50)
    index.close()


def test_bulk_rebuild_and_pruned_feed(path: Path) -> None:
    """A bulk replay (triggers off, indexes rebuilt at the end) starts a new generation: FTS5 answers while it
    runs, the index rebuilds after; so does an index whose feed was pruned past it."""
    db = connect(path)
    rng = random.Random(11)
    _insert(db, [_row(rng, f"r{i}") for i in range(200)])
    index = LexicalIndex()
    assert _same(index, db, ["w0", "café"], 30)
    drop_index_triggers(db)
    _insert(db, [_row(rng, f"bulk{i}") for i in range(100)])
    assert index.matches(db, ["w0"]) is None  # mid-replay: FTS5 does not hold these rows yet either
    restore_index_triggers(db)
    assert _same(index, db, ["w0", "café"], 300)
    assert index.rows == 300
    for step in range(3):
        _change(db, rng, f"after{step}")
    # As if the triggers had pruned the feed's tail past the index: only the last change is left.
    db.execute("DELETE FROM memory_changes WHERE seq < (SELECT max(seq) FROM memory_changes)")
    assert _same(index, db, ["w0", "w2", "ωmega"], 300)
    index.close()


def test_compaction_keeps_answers(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lexical_postings, "COMPACT_MIN", 10)
    db = connect(path)
    rng = random.Random(5)
    _insert(db, [_row(rng, f"r{i}") for i in range(150)])
    index = LexicalIndex()
    for step in range(30):
        _change(db, rng, f"c{step}")
        _same(index, db, _terms(rng) or ["w0"], 100)  # it asserts when the index answers
        assert _same(index, db, ["w0", "w1"], 100)
    assert index._postings is not None and len(index._postings._rid) < 150 + 30 * 5, "never compacted"
    index.close()


def test_phrases_fts5_splits_fall_back() -> None:
    tokens = Unicode61()
    assert tokens.term("e-mail") is None  # two tokens: FTS5 matches them adjacent
    assert tokens.term("x_y") is None
    assert tokens.term("_") is None  # no token at all
    assert tokens.term("CAFÉ") == "cafe"
    assert tokens.term("Straße") == "straße"
    assert tokens.term("ǅemal") == "ǆemal"
    tokens.close()


def test_recall_lexical_falls_back_to_the_same_answer(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """recall_lexical through the index equals recall_lexical through FTS5, for queries the index answers and
    for those it leaves to FTS5 (a phrase of two tokens), with broad and narrow filters."""
    db = connect(path)
    rng = random.Random(13)
    _insert(db, [_row(rng, f"r{i}") for i in range(400)])
    db.execute("UPDATE memories SET namespace = 'other' WHERE rowid % 7 = 0")
    text_queue.drain(db)
    with_index = SQLiteMemoryQueries(db)
    assert with_index.lexical_ready(30), "the background build never finished"
    monkeypatch.setenv("AI_MEMORY_LEXICAL_INDEX", "off")
    without = SQLiteMemoryQueries(db)
    assert without._lexical is None
    for flt in (MemoryFilter(now="2026-06-01T00:00:00Z"), MemoryFilter(now="2026-06-01T00:00:00Z",
                                                                        namespace="other")):
        for terms in (["w0", "w1"], ["e-mail", "w2"], ["café", "x"], ["w0"]):
            for limit in (1, 10, 100):
                ours = [(h.memory.id, h.score) for h in with_index.recall_lexical(terms, flt, limit=limit)]
                theirs = [(h.memory.id, h.score) for h in without.recall_lexical(terms, flt, limit=limit)]
                assert [i for i, _ in ours] == [i for i, _ in theirs], (terms, flt, limit)
                assert [s for _, s in ours] == pytest.approx([s for _, s in theirs], rel=1e-9)
    with_index.close()
    without.close()


def test_uncommitted_changes_are_left_to_fts5(path: Path) -> None:
    """Inside a write transaction of its own connection the index does not read (the changes may roll back,
    and their sequence numbers be reused): FTS5 answers there, the index after."""
    db = connect(path)
    rng = random.Random(17)
    _insert(db, [_row(rng, f"r{i}") for i in range(100)])
    index = LexicalIndex()
    assert _same(index, db, ["w0"], 50)
    db.execute("BEGIN IMMEDIATE")
    _insert(db, [_row(rng, "pending")])
    assert index.matches(db, ["w0"]) is None
    db.execute("ROLLBACK")
    _insert(db, [_row(rng, "committed")])
    assert _same(index, db, ["w0", "w1"], 101)
    assert index.rows == 101
    index.close()
