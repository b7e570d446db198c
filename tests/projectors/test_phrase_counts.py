"""Keyword phrase counts kept between recalls are always those a fresh count gives."""

from __future__ import annotations

import random
import sqlite3

from projectors.sqlite.phrase_counts import PhraseCounts
from projectors.sqlite.pruning import phrase_hits
from projectors.sqlite.schema import connect

WORDS = ["deploy", "rollback", "backup", "offsite", "wages", "payroll", "flight", "gate"]
PHRASES = [f'"{w}"' for w in WORDS]


def _insert(db: sqlite3.Connection, n: int, content: str) -> None:
    db.execute("INSERT INTO memories (id, tier, namespace, title, content, tags, priority, confidence, source, "
               "access_count, created_at, updated_at, metadata) VALUES (?, 'long', 'ns', ?, ?, '[]', 5, 1.0, "
               "'api', 0, '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z', '{}')", (f"m{n}", f"t{n}", content))


def _text(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randrange(1, 5)))


def test_counts_follow_every_change_of_the_index_and_only_those() -> None:
    db, counts, rng = connect(":memory:"), PhraseCounts(), random.Random(7)
    for n in range(40):
        _insert(db, n, _text(rng))
    next_id = 40
    for step in range(120):
        op = rng.randrange(5)
        live = [r[0] for r in db.execute("SELECT id FROM memories")]
        if op == 0:
            _insert(db, next_id, _text(rng))
            next_id += 1
        elif op == 1 and live:
            db.execute("UPDATE memories SET content = ? WHERE id = ?", (_text(rng), rng.choice(live)))
        elif op == 2 and live:
            db.execute("DELETE FROM memories WHERE id = ?", (rng.choice(live),))
        elif op == 3 and live:  # what a touch changes: no indexed column, so the counts stay valid
            db.execute("UPDATE memories SET access_count = access_count + 1 WHERE id = ?", (rng.choice(live),))
        asked = rng.sample(PHRASES, 3)
        assert counts.hits(db, asked) == phrase_hits(db, asked), f"step {step}"


def test_counts_are_reused_until_the_index_changes() -> None:
    db, counts = connect(":memory:"), PhraseCounts()
    _insert(db, 1, "deploy rollback")
    assert counts.hits(db, ['"deploy"', '"gate"', '"deploy"']) == {'"deploy"': 1, '"gate"': 0}
    assert counts.counted == 2
    db.execute("UPDATE memories SET access_count = 9 WHERE id = 'm1'")
    assert counts.hits(db, ['"deploy"']) == {'"deploy"': 1} and counts.counted == 2, "a touch keeps them"
    _insert(db, 2, "deploy gate")
    assert counts.hits(db, ['"deploy"', '"gate"']) == {'"deploy"': 2, '"gate"': 1} and counts.counted == 4


def test_nothing_is_kept_inside_a_transaction() -> None:
    db, counts = connect(":memory:"), PhraseCounts()
    _insert(db, 1, "deploy")
    db.execute("BEGIN")
    _insert(db, 2, "deploy")  # not yet flushed to a segment: the structure record is unchanged
    assert counts.hits(db, ['"deploy"']) == {'"deploy"': 2}
    db.execute("COMMIT")
    assert counts.hits(db, ['"deploy"']) == {'"deploy"': 2}
    _insert(db, 3, "deploy")
    assert counts.hits(db, ['"deploy"']) == {'"deploy"': 3}
