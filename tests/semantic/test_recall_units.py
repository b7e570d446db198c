"""Our ranking's parts as pure functions (issue #15): content terms, the fusion, the bounded priors."""

from __future__ import annotations

from dataclasses import replace

import pytest

from producers.memory.lexical import STOP_WORDS, content_terms
from producers.memory.recall import LONG_CHARS, LONG_FLOOR, PRIOR_WEIGHT, Candidates, dense_share, fuse, prior
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
    scores = {m.id: s for m, s in fuse(cands, dense_weight=0.5)}
    assert scores == pytest.approx({"a": 0.5, "b": 0.5, "c": 0.25})
    assert {m.id: s for m, s in fuse(cands, dense_weight=0.0)} == pytest.approx({"a": 0.8, "b": 0.1, "c": 0.0})


def _candidates(cosines: list[float], lexical: list[float], chars: int = 40) -> Candidates:
    """Dense hits with these cosines and lexical hits with these scores, each its own memory."""
    dense = [(memory(f"d{i}", content="x" * chars), cos) for i, cos in enumerate(cosines)]
    lex = [ScoredMemory(memory(f"l{i}", content="x" * chars), s) for i, s in enumerate(lexical)]
    return Candidates(lexical=lex, lexical_cosines={}, dense=dense)


def test_the_dense_share_follows_the_more_confident_half() -> None:
    flat, peaked = [0.5] * 8, [0.9, *[0.5] * 7]
    # A dense half whose best stands out gets the larger share; a flat one yields to a peaked lexical half.
    assert dense_share(_candidates(peaked, flat)) > 0.9
    assert dense_share(_candidates(flat, peaked)) < 0.1
    # Equal confidence: the dense half counts three times (fitted), so it keeps three quarters.
    assert dense_share(_candidates(peaked, peaked)) == pytest.approx(0.75)
    # No lexical hit at all: dense alone.
    assert dense_share(_candidates(peaked, [])) == pytest.approx(1.0)


def test_long_candidates_lower_the_dense_share_for_the_whole_query() -> None:
    cosines, lexical = [0.9, *[0.5] * 7], [0.9, *[0.5] * 7]
    short = dense_share(_candidates(cosines, lexical, chars=LONG_CHARS[0]))
    assert dense_share(_candidates(cosines, lexical, chars=LONG_CHARS[1] * 3)) == pytest.approx(short * LONG_FLOOR)
    middle = dense_share(_candidates(cosines, lexical, chars=sum(LONG_CHARS) // 2))
    assert short * LONG_FLOOR < middle < short
    # One share for every candidate of a query: a short memory's cosine counts no more than a long one's (a
    # share per memory would rank the short one first here).
    long_memory, short_memory = memory("long", content="x" * 6000), memory("short", content="x" * 40)
    mixed = Candidates(lexical=[ScoredMemory(long_memory, 0.5), ScoredMemory(short_memory, 0.5)],
                       lexical_cosines={"long": 0.9, "short": 0.9}, dense=[])
    scores = {m.id: s for m, s in fuse(mixed, dense_weight=dense_share(mixed))}
    assert scores["long"] == pytest.approx(scores["short"])


def test_priors_are_bounded_tie_breakers() -> None:
    low = memory("low", priority=0, confidence=0.0, tier="short", updated_at="2020-01-01T00:00:00Z")
    high = memory("high", priority=10, access_count=1_000_000, tier="long")
    assert prior(low, NOW) == pytest.approx(0.0, abs=1e-9) and prior(high, NOW) == pytest.approx(1.0)
    # The most a prior can add: a memory 3% less relevant never passes one with no prior at all.
    assert 0.97 * (1 + PRIOR_WEIGHT * prior(high, NOW)) < 1.0 * (1 + PRIOR_WEIGHT * prior(low, NOW))
