"""Our ranking's parts as pure functions (issue #15): content terms, the fusion, the bounded priors."""

from __future__ import annotations

from dataclasses import replace

import pytest

from producers.lexical import STOP_WORDS, content_terms
from producers.recall import PRIOR_WEIGHT, Candidates, fuse, prior
from projectors import ScoredMemory
from schemas import Memory

NOW = "2026-01-10T00:00:00Z"


def memory(memory_id: str, **fields: object) -> Memory:
    base = Memory(id=memory_id, tier="long", namespace="global", title=memory_id, content="c", tags=[], priority=5,
                  confidence=1.0, source="api", access_count=0, created_at=NOW, updated_at=NOW,
                  last_accessed_at=None, expires_at=None, metadata={})
    return replace(base, **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(("context", "terms"), [
    ("when do employees receive their wages", ["employees", "receive", "wages"]),
    ("How often do WE copy our data offsite?", ["often", "copy", "data", "offsite"]),
    ("what's the billing-7 key", ["billing-7", "key"]),
    ("wages wages, Wages!", ["wages"]),
    ("what is it", []),
])
def test_content_terms_drop_stop_words_and_repeats(context: str, terms: list[str]) -> None:
    assert content_terms(context) == terms


def test_the_stop_list_names_function_words_only() -> None:
    assert {"when", "our", "the", "what"} <= STOP_WORDS
    assert not {"wages", "data", "key", "copy"} & STOP_WORDS


def test_fusion_weighs_each_half_on_its_own_scale() -> None:
    a, b, c = memory("a"), memory("b"), memory("c")
    cands = Candidates(lexical=[ScoredMemory(a, 0.8), ScoredMemory(b, 0.1)], lexical_cosines={"a": 0.2, "b": 0.9},
                       dense=[(b, 0.9), (c, 0.5)])
    scores = {m.id: s for m, s in fuse(cands, mode="hybrid", dense_weight=0.5, relative=False)}
    assert scores == pytest.approx({"a": 0.5, "b": 0.5, "c": 0.25})
    relative = {m.id: s for m, s in fuse(cands, mode="hybrid", dense_weight=0.5, relative=True)}
    assert relative == pytest.approx({"a": 0.5 + 0.5 * 0.2 / 0.9, "b": 0.5 + 0.5 * 0.1 / 0.8, "c": 0.5 * 0.5 / 0.9})
    assert {m.id: s for m, s in fuse(cands, mode="keyword")} == pytest.approx({"a": 0.8, "b": 0.1, "c": 0.0})


def test_priors_are_bounded_tie_breakers() -> None:
    low = memory("low", priority=0, confidence=0.0, tier="short", updated_at="2020-01-01T00:00:00Z")
    high = memory("high", priority=10, access_count=1_000_000, tier="long")
    assert prior(low, NOW) == pytest.approx(0.0, abs=1e-9) and prior(high, NOW) == pytest.approx(1.0)
    # The most a prior can add: a memory 3% less relevant never passes one with no prior at all.
    assert 0.97 * (1 + PRIOR_WEIGHT * prior(high, NOW)) < 1.0 * (1 + PRIOR_WEIGHT * prior(low, NOW))


def test_a_long_memorys_cosine_weighs_less_as_in_the_original() -> None:
    short, long = memory("short", content="x" * 400), memory("long", content="x" * 6000)
    cands = Candidates(lexical=[ScoredMemory(short, 0.5), ScoredMemory(long, 0.5)],
                       lexical_cosines={"short": 0.9, "long": 0.9}, dense=[])
    scores = {m.id: s for m, s in fuse(cands, mode="hybrid", dense_weight=0.6, relative=False)}
    assert scores["short"] == pytest.approx(0.6 * 0.9 + 0.4 * 0.5)
    assert scores["long"] == pytest.approx(0.18 * 0.9 + 0.82 * 0.5)  # 0.6 · (0.15 / 0.50)
