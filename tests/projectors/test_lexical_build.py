"""The lexical index is built in the background (projectors/sqlite/lexical_build.py): recall never waits for it.

Real database files throughout. A build is held at a chunk boundary by the hook it calls after each chunk
(``lexical_build.between_chunks``), so "while it builds" is a state the test controls, not a race with a sleep.
"""

from __future__ import annotations

import logging
import random
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from projectors.queries import MemoryFilter
from projectors.sqlite import lexical_build, lexical_postings
from projectors.sqlite.lexical_postings import feed_head
from projectors.sqlite.queries import LEXICAL_INDEX_ENV, SQLiteMemoryQueries
from projectors.sqlite.schema import connect, drop_index_triggers, restore_index_triggers
from tests.projectors.test_lexical_index import _change, _insert, _row

_FLT = MemoryFilter(now="2026-06-01T00:00:00Z")
_CONTEXTS = (["w0", "w1"], ["w2"], ["café", "w5"], ["w0", "e-mail"])


class Gate:
    """Holds the build thread after its first chunk until released; counts the chunks it saw."""

    def __init__(self) -> None:
        self.held = threading.Event()
        self.release = threading.Event()
        self.chunks = 0

    def __call__(self) -> None:
        self.chunks += 1
        self.held.set()
        assert self.release.wait(30), "the test never released the build"


@pytest.fixture
def db(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    conn = connect(tmp_path / "readmodel.db")
    rng = random.Random(29)
    _insert(conn, [_row(rng, f"r{i}") for i in range(400)])
    yield conn
    conn.close()


@pytest.fixture
def fts5(db: sqlite3.Connection, monkeypatch: pytest.MonkeyPatch) -> Iterator[SQLiteMemoryQueries]:
    """The same queries with the index off: FTS5's own answers, to compare with."""
    monkeypatch.setenv(LEXICAL_INDEX_ENV, "off")
    queries = SQLiteMemoryQueries(db)
    monkeypatch.delenv(LEXICAL_INDEX_ENV)
    yield queries
    queries.close()


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> Iterator[Gate]:
    gate = Gate()
    monkeypatch.setattr(lexical_postings, "BUILD_CHUNK", 50)  # several chunks over 400 rows
    monkeypatch.setattr(lexical_build, "between_chunks", gate)
    yield gate
    gate.release.set()  # never leave a build thread waiting behind a failed assertion


def _answers(queries: SQLiteMemoryQueries) -> list[list[tuple[str, float]]]:
    return [[(h.memory.id, round(h.score, 12)) for h in queries.recall_lexical(terms, _FLT, limit=20)]
            for terms in _CONTEXTS]


def _build_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "lexical-index-build"]


def test_recall_answers_from_fts5_while_building_then_from_the_index(
        db: sqlite3.Connection, fts5: SQLiteMemoryQueries, gate: Gate) -> None:
    queries = SQLiteMemoryQueries(db)  # starts the build
    assert queries._lexical is not None
    assert gate.held.wait(30)
    assert queries.lexical_index_status().state == "building"
    assert queries._lexical.matches(db, ["w0"]) is None  # at once: the query does not wait for the build
    assert _answers(queries) == _answers(fts5)
    gate.release.set()
    assert queries.lexical_ready(30)
    status = queries.lexical_index_status()
    assert (status.state, status.memories) == ("ready", 400) and status.bytes > 0
    assert queries._lexical.matches(db, ["w0"]) is not None  # the index answers now
    assert _answers(queries) == _answers(fts5)
    assert gate.chunks == 8
    queries.close()
    assert not _build_threads()


def test_rebuild_after_a_bulk_replay_runs_in_the_background(
        db: sqlite3.Connection, fts5: SQLiteMemoryQueries, gate: Gate) -> None:
    gate.release.set()
    queries = SQLiteMemoryQueries(db)
    assert queries.lexical_ready(30) and queries._lexical is not None
    drop_index_triggers(db)  # a bulk replay: a new generation when it ends
    _insert(db, [_row(random.Random(3), f"bulk{i}") for i in range(100)])
    restore_index_triggers(db)
    gate.held.clear()
    gate.release.clear()
    assert queries._lexical.matches(db, ["w0"]) is None  # the old postings are dropped, a build starts
    assert gate.held.wait(30)
    assert queries.lexical_index_status().state == "building"
    assert _answers(queries) == _answers(fts5)
    gate.release.set()
    assert queries.lexical_ready(30)
    assert queries.lexical_index_status().memories == 500
    assert _answers(queries) == _answers(fts5)
    queries.close()


def test_a_build_overtaken_by_writes_catches_up_or_starts_again(
        db: sqlite3.Connection, gate: Gate, caplog: pytest.LogCaptureFixture) -> None:
    """Writes during a build are read from the feed before the postings are handed over; a feed pruned past
    the build's snapshot makes it build again."""
    caplog.set_level(logging.INFO, logger="ai_memory.readmodel")
    rng = random.Random(31)
    queries = SQLiteMemoryQueries(db)
    assert queries._lexical is not None and gate.held.wait(30)
    for step in range(5):
        _change(db, rng, f"during{step}")
    gate.release.set()
    assert queries.lexical_ready(30)
    postings, (generation, last) = queries._lexical._postings, feed_head(db)
    assert postings is not None and generation is not None and postings.at(generation, last)  # no query needed
    assert postings.rows == db.execute("SELECT count(*) FROM memories").fetchone()[0]
    assert "building again" not in caplog.text
    queries.close()

    gate.held.clear()
    gate.release.clear()
    queries = SQLiteMemoryQueries(db)
    assert queries._lexical is not None and gate.held.wait(30)
    _change(db, rng, "pruned")
    db.execute("DELETE FROM memory_changes WHERE seq < (SELECT max(seq) FROM memory_changes)")
    gate.release.set()
    assert queries.lexical_ready(30)
    assert "building again" in caplog.text
    assert gate.chunks > 2 * 8  # two whole builds
    postings = queries._lexical._postings
    assert postings is not None and postings.rows == db.execute("SELECT count(*) FROM memories").fetchone()[0]
    queries.close()


def test_close_during_a_build_returns_promptly(db: sqlite3.Connection, monkeypatch: pytest.MonkeyPatch) -> None:
    held = threading.Event()

    def slow() -> None:  # a chunk of one row every 50 ms: 20 s for the whole table
        held.set()
        time.sleep(0.05)

    monkeypatch.setattr(lexical_postings, "BUILD_CHUNK", 1)
    monkeypatch.setattr(lexical_build, "between_chunks", slow)
    queries = SQLiteMemoryQueries(db)
    assert held.wait(30) and queries.lexical_index_status().state == "building"
    t0 = time.perf_counter()
    queries.close()
    assert time.perf_counter() - t0 < 2.0
    assert not _build_threads()


def test_a_failed_build_warns_once_and_retries_later(
        db: sqlite3.Connection, fts5: SQLiteMemoryQueries, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    tries: list[float] = []

    def failing() -> None:
        tries.append(time.monotonic())
        if len(tries) <= 2:
            raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(lexical_build, "RETRY_FIRST", 0.3)
    monkeypatch.setattr(lexical_build, "between_chunks", failing)
    caplog.set_level(logging.DEBUG, logger="ai_memory.readmodel")
    queries = SQLiteMemoryQueries(db)
    assert queries._lexical is not None and queries._lexical._builder is not None
    builder = queries._lexical._builder
    deadline = time.monotonic() + 30
    while builder.building and time.monotonic() < deadline:
        time.sleep(0.01)
    assert queries.lexical_index_status().state == "failed"
    for _ in range(20):  # recalls within the delay start no build: no hot loop
        assert _answers(queries) == _answers(fts5)
    assert len(tries) == 1 or tries[1] - tries[0] >= 0.3
    while len(tries) < 3 and time.monotonic() < deadline:  # later recalls try again, after 0.3 s then 0.6 s
        _answers(queries)
        time.sleep(0.05)
    assert queries.lexical_ready(30)
    assert tries[1] - tries[0] >= 0.3 and tries[2] - tries[1] >= 0.6
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "build failed" in r.message]
    assert len(warnings) == 1
    assert _answers(queries) == _answers(fts5)
    queries.close()


def test_an_in_memory_database_builds_at_its_first_recall() -> None:
    db = connect(":memory:")
    _insert(db, [_row(random.Random(37), f"r{i}") for i in range(50)])
    queries = SQLiteMemoryQueries(db)
    assert queries.lexical_index_status().state == "waiting" and not _build_threads()
    queries.recall_lexical(["w0"], _FLT, limit=5)
    assert queries.lexical_index_status().state == "ready" and queries.lexical_index_status().memories == 50
    queries.close()
    db.close()
