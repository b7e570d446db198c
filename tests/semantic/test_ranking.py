"""The pieces of the original's hybrid formula (ai-memory.md §5)."""

from __future__ import annotations

import math

import pytest

from producers.memory.ranking import ann_k, blend, blend_weight, decay, fts_limit, semantic_only
from producers.memory.service import round_score
from projectors import ScoredMemory
from schemas import Memory

NOW = "2026-01-31T00:00:00+00:00"


def memory(memory_id: str, *, content: str = "c", tier: str = "long", created: str = NOW) -> Memory:
    return Memory(id=memory_id, tier=tier, namespace="global", title=memory_id,  # type: ignore[arg-type]
                  content=content, tags=[], priority=5, confidence=1.0, source="api", access_count=0,
                  created_at=created, updated_at=created)


def test_candidate_counts() -> None:
    assert (fts_limit(10), ann_k(10)) == (30, 50)
    assert (fts_limit(20), ann_k(20)) == (60, 100)
    assert (fts_limit(1), ann_k(1)) == (30, 50)


@pytest.mark.parametrize(("chars", "weight"), [(0, 0.5), (500, 0.5), (2750, 0.325), (5000, 0.15), (90_000, 0.15)])
def test_blend_weight_falls_linearly_with_content_length(chars: int, weight: float) -> None:
    assert blend_weight(chars) == pytest.approx(weight)


def test_decay_halves_at_each_tiers_half_life() -> None:
    assert decay("short", 7) == pytest.approx(0.5)
    assert decay("mid", 30) == pytest.approx(0.5)
    assert decay("long", 365) == pytest.approx(0.5)
    assert decay("long", 0) == 1.0 and decay("mid", -3) == 1.0


def test_blend_normalises_fts_and_gives_semantic_only_hits_zero_fts() -> None:
    a, b, c = memory("a"), memory("b"), memory("c")
    fts = [ScoredMemory(a, 10.0), ScoredMemory(b, 5.0)]
    hits = {h.memory.id: h for h in blend(fts, {"a": 0.4}, [(c, 0.9), (a, 0.4)], now=NOW)}
    assert hits["a"].score == pytest.approx(0.5 * 0.4 + 0.5 * 1.0)
    assert hits["b"].score == pytest.approx(0.5 * 0.0 + 0.5 * 0.5), "no vector: cosine counts 0"
    assert hits["c"].score == pytest.approx(0.5 * 0.9), "semantic-only: fts counts 0"
    assert [h.memory.id for h in blend(fts, {"a": 0.4}, [(c, 0.9)], now=NOW)] == ["a", "c", "b"]


def test_blend_applies_decay_by_tier_and_age() -> None:
    old = memory("old", tier="short", created="2026-01-24T00:00:00+00:00")  # 7 days before NOW
    (hit,) = blend([], {}, [(old, 0.8)], now=NOW)
    assert hit.score == pytest.approx(0.5 * 0.8 * 0.5)
    long_text = memory("long", content="x" * 5000)
    (hit,) = blend([ScoredMemory(long_text, 3.0)], {"long": 1.0}, [], now=NOW)
    assert hit.score == pytest.approx(0.15 * 1.0 + 0.85 * 1.0) and hit.weight == pytest.approx(0.15)


def test_semantic_only_ranks_by_cosine() -> None:
    hits = semantic_only([(memory("a"), 0.3), (memory("b"), 0.7)], now=NOW)
    assert [h.memory.id for h in hits] == ["b", "a"] and hits[0].score == pytest.approx(0.7)


def test_scores_round_to_three_decimals_half_away_from_zero() -> None:
    assert round_score(0.12345) == 0.123 and round_score(0.0125) == 0.013 and round_score(-0.0125) == -0.013
    assert math.isclose(round_score(2 / 3), 0.667)
