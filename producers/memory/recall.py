"""Recall, top to bottom: candidates → fuse → priors → boost → budget → touch.

Two rankings share these steps (``ranking`` in the request, else ``ServiceConfig.ranking``, else the env
``AI_MEMORY_RANKING``; "ours" by default):

* **ours**: the lexical half is bm25 over the context's content words only (:mod:`producers.memory.lexical`: stop words
  dropped), divided by the most any memory could score for the query (the read model's ``recall_lexical``:
  1.0 means every term matched at saturation); the dense half is the cosine; both pools hold
  :func:`pool_size` candidates. They are fused as ``w·dense + (1-w)·lexical``, each half on that absolute
  scale, with ``w`` set per query (:func:`dense_share`): from how far each half's best candidate stands above
  the rest (a confident half weighs more) and from how long the candidates are (a long memory's vector
  averages all it says). Its parameters are fitted on the generated corpus only (``bench/bench_quality.py
  --fit``; the public corpus is only reported). Priority, confidence, tier, access count and recency then move
  a score by at most :data:`PRIOR_WEIGHT` (a tie-breaker: a recall touches what it returns, and a prior that
  decided the order would let popular memories crowd out relevant ones as questions accumulate).
* **original**: ai-memory's own formula (:mod:`producers.memory.ranking`): the composite keyword score (bm25 plus
  priority, access count, confidence, tier, recency) divided by the best one, blended with the cosine by content
  length, times a tier decay. Kept so that compatibility stays testable.

``mode`` picks which halves run: "hybrid" (the default when a model is loaded), "semantic" (dense only) or
"keyword" (lexical only; also the fallback when no model is loaded or the query cannot be embedded). The
namespace proximity boost, the token budget and the touch are the same for both rankings.
"""

from __future__ import annotations

import math
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from infra.embed import EmbedError
from producers.input.commands import RANKINGS, RecallQuery, check_ranking
from producers.memory.lexical import content_terms
from producers.memory.ranking import (
    COSINE_GATE,
    ann_k,
    blend,
    decay,
    fts_limit,
    keyword_context,
    semantic_only,
)
from producers.memory.semantic import Semantic
from projectors import MemoryFilter, MemoryQueries, ScoredMemory, count_tokens
from schemas import Memory, parse_ts

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = [
    "CONFIDENCE_DEPTH",
    "DENSE_CONFIDENCE",
    "LONG_CHARS",
    "LONG_FLOOR",
    "PRIOR_WEIGHT",
    "RANKINGS",
    "Candidates",
    "Ranked",
    "RecallPipeline",
    "RecallResult",
    "apply_budget",
    "default_ranking",
    "dense_share",
    "fuse",
    "pool_size",
    "prior",
    "round_score",
]

# Fitted on the generated corpus only (``bench/bench_quality.py --fit``; bench/README.md, "bench_quality"):
#: How much more the dense half's confidence counts than the lexical half's in :func:`dense_share`.
DENSE_CONFIDENCE = 3.0
#: A half's confidence: its best score less its ``CONFIDENCE_DEPTH``-th best.
CONFIDENCE_DEPTH = 5
#: The median candidate length (characters) from which the dense share falls, and where it reaches the floor.
LONG_CHARS = (100, 400)
#: The least of the dense share that long candidates keep.
LONG_FLOOR = 0.3
#: How far the static priors may move a fused score, relative to it: a tie-breaker, never a decider.
PRIOR_WEIGHT = 0.02
# An access count past this saturates the access prior (log-scaled below it).
_ACCESS_SATURATION = 100
_TIER_PRIOR = {"short": 0.0, "mid": 0.5, "long": 1.0}


def default_ranking() -> str:
    """``AI_MEMORY_RANKING`` when set (checked), else "ours"."""
    return check_ranking(os.environ.get("AI_MEMORY_RANKING") or "ours")


def pool_size(limit: int) -> int:
    """Candidates per half for our ranking: enough that a memory ranked low by one half but high by the other is
    still in the pool (fitted with the fusion; larger pools gained nothing on the generated corpus)."""
    return max(10 * limit, 100)


def round_score(score: float) -> float:
    """Three decimals, halves away from zero (as Rust's ``f64::round``)."""
    scaled = score * 1000
    return math.copysign(math.floor(abs(scaled) + 0.5), scaled) / 1000


@dataclass(frozen=True)
class RecallResult:
    """What recall returns. ``mode`` is "hybrid", "semantic" or "keyword"; ``ranking`` "ours" or "original";
    ``fallback`` says why a semantic request ran in keyword mode (no model loaded); the candidate counts and
    mean blend weight feed ``meta``."""

    memories: list[ScoredMemory]
    tokens_used: int
    budget_tokens: int | None
    budget_overflow: bool
    tokens_remaining: int
    dropped: int
    mode: str = "keyword"
    fts_candidates: int = 0
    semantic_candidates: int = 0
    blend_weight: float | None = None
    fallback: str | None = None
    ranking: str = "ours"


@dataclass(frozen=True, slots=True)
class Candidates:
    """Step 1's output: the lexical hits (score: bm25 for ours, the composite for the original), the cosine of
    each lexical hit that has a vector, and the dense hits with their cosine."""

    lexical: list[ScoredMemory]
    lexical_cosines: dict[str, float]
    dense: list[tuple[Memory, float]]


@dataclass(frozen=True, slots=True)
class Ranked:
    """Steps 2 and 3's output: the best ``limit`` hits, best first, and the blend weight ``meta`` reports."""

    hits: list[ScoredMemory]
    blend_weight: float | None


class RecallPipeline:
    """One recall, for every surface (HTTP, MCP, CLI): :meth:`run` reads as the steps it takes."""

    def __init__(self, queries: MemoryQueries, semantic: Semantic | None) -> None:
        self.queries = queries
        self.semantic = semantic

    async def run(self, q: RecallQuery, flt: MemoryFilter, *, ranking: str, now: str,
                  touch: Callable[[list[str]], Awaitable[None]]) -> RecallResult:
        limit = q.filters.limit
        mode, fallback = self._mode(q.mode, limit)
        if mode != "keyword":
            try:
                candidates = await self.candidates(q.context, flt, limit=limit, mode=mode, ranking=ranking)
            except EmbedError as exc:
                mode, fallback = "keyword", str(exc)
        if mode == "keyword":
            candidates = Candidates(self.lexical(q.context, flt, limit=limit, ranking=ranking, hybrid=False), {}, [])
        ranked = self.rank(candidates, mode=mode, ranking=ranking, limit=limit, now=now)
        hits = proximity_boost(ranked.hits, q.filters.namespace)
        result = replace(apply_budget(hits, q.budget_tokens), mode=mode, ranking=ranking, fallback=fallback,
                         fts_candidates=len(candidates.lexical), semantic_candidates=len(candidates.dense),
                         blend_weight=ranked.blend_weight)
        if result.memories:
            await touch([h.memory.id for h in result.memories])
        return result

    def _mode(self, wanted: str, limit: int) -> tuple[str, str | None]:
        """The mode that will run, and why it is keyword when the request did not ask for that."""
        if wanted == "keyword" or not limit:
            return "keyword", None
        if self.semantic is None:
            return "keyword", "no embedder configured"
        if not self.semantic.ready:
            return "keyword", self.semantic.unavailable
        return ("semantic" if wanted == "semantic" else "hybrid"), None

    # -- 1. candidates ------------------------------------------------------------------------------------

    def lexical(self, context: str, flt: MemoryFilter, *, limit: int, ranking: str, hybrid: bool
                ) -> list[ScoredMemory]:
        """The lexical half: bm25 of the content words (ours), or the original's composite keyword score with
        its larger pool when it is to be blended."""
        if not limit:
            return []
        if ranking == "original":
            return self.queries.recall_keyword(keyword_context(context), flt,
                                               limit=fts_limit(limit) if hybrid else limit)
        return self.queries.recall_lexical(content_terms(context), flt, limit=pool_size(limit))

    async def candidates(self, context: str, flt: MemoryFilter, *, limit: int, mode: str, ranking: str
                         ) -> Candidates:
        """Both halves (hybrid) or the dense one (semantic). The model embeds the query in a worker thread
        while the keyword query runs here (SQLite releases the GIL too).

        Raises:
            EmbedError: the query could not be embedded (the caller falls back to keyword mode).
        """
        assert self.semantic is not None
        embedding = self.semantic.embed_soon([context])
        try:
            lexical = self.lexical(context, flt, limit=limit, ranking=ranking, hybrid=True) if mode == "hybrid" else []
        finally:
            vectors = await embedding
        if vectors is None:
            raise EmbedError(self.semantic.unavailable or "the query could not be embedded")
        return self.candidates_with_vector(vectors[0], lexical, flt, limit=limit, ranking=ranking)

    def candidates_with_vector(self, query: NDArray[np.float32], lexical: list[ScoredMemory], flt: MemoryFilter,
                               *, limit: int, ranking: str) -> Candidates:
        """The dense half once the query is embedded, and the cosine of each lexical hit. (Benchmarks time this
        part on each backend.)"""
        assert self.semantic is not None
        # Both rankings drop dense hits at or below the original's cosine gate: nothing is that unrelated.
        k = ann_k(limit) if ranking == "original" else pool_size(limit)
        excluded = self.queries.expiring_ids(flt.now) if flt.now else []
        found = self.semantic.search(query, k, flt, excluded=excluded)
        # A lexical hit the search found already has its cosine; only the others' vectors are read. The lexical
        # hits passed the same filter, so the dense hits among them need no second read either.
        searched = {h.id: h.cosine for h in found}
        cosines = {i: searched[i] for i in (h.memory.id for h in lexical) if i in searched}
        cosines.update(self.semantic.cosines_of(query, [h.memory.id for h in lexical if h.memory.id not in searched],
                                                self.queries))
        known = {h.memory.id: h.memory for h in lexical}
        ann = [h for h in found if h.cosine > COSINE_GATE]
        return Candidates(lexical, cosines, self.semantic.hits_to_memories(ann, self.queries, flt, known=known))

    async def nearest(self, text: str, flt: MemoryFilter, *, k: int) -> list[tuple[Memory, float]] | None:
        """The dense step alone, ungated: the ``k`` memories nearest to ``text`` with their cosine, best first
        (check_duplicate); None when ``text`` could not be embedded."""
        assert self.semantic is not None
        vectors = await self.semantic.embed([text])
        if vectors is None:
            return None
        excluded = self.queries.expiring_ids(flt.now) if flt.now else []
        return self.semantic.hits_to_memories(self.semantic.search(vectors[0], k, flt, excluded=excluded),
                                              self.queries, flt)

    # -- 2. fuse and 3. priors ----------------------------------------------------------------------------

    def rank(self, c: Candidates, *, mode: str, ranking: str, limit: int, now: str) -> Ranked:
        """The best ``limit`` candidates by the ranking's scores, best first."""
        if ranking == "original":
            return _original(c, mode=mode, limit=limit, now=now)
        w = {"hybrid": dense_share(c), "semantic": 1.0, "keyword": 0.0}[mode]
        fused = fuse(c, dense_weight=w)
        # A prior lifts a score by at most PRIOR_WEIGHT of itself, so a candidate below the limit-th fused score
        # divided by 1 + PRIOR_WEIGHT cannot reach the top: its prior (a date parse, a log) is not computed.
        best = sorted((s for _, s in fused), reverse=True)
        floor = best[limit - 1] / (1.0 + PRIOR_WEIGHT) if 0 < limit <= len(best) else 0.0
        scored = [ScoredMemory(m, s * (1.0 + PRIOR_WEIGHT * prior(m, now))) for m, s in fused if s >= floor]
        scored.sort(key=lambda h: (-h.score, h.memory.id))
        return Ranked(scored[:limit], w if mode == "hybrid" else None)


def dense_share(c: Candidates, *, confidence: float = DENSE_CONFIDENCE, depth: int = CONFIDENCE_DEPTH,
                long: tuple[int, int] = LONG_CHARS) -> float:
    """The dense half's share of this query's fusion: each half's confidence is how far its best candidate
    stands above its ``depth``-th (a half that ranks everything alike says little), the dense one counted
    ``confidence`` times; their ratio sets the share, which then falls with the median length of the
    candidates (:func:`_length_factor`). One share for all the query's candidates: a share per memory would
    favour short memories over long ones whatever they say."""
    cosines = [max(0.0, cos) for cos in _cosines(c).values()]
    dense = confidence * _gap(cosines, depth)
    total = dense + _gap([h.score for h in c.lexical], depth)
    share = dense / total if total > 0 else 0.5
    lengths = sorted(len(m.content) for m in _memories(c).values())
    return share * _length_factor(lengths[len(lengths) // 2] if lengths else 0, long)


def fuse(c: Candidates, *, dense_weight: float) -> list[tuple[Memory, float]]:
    """``w·dense + (1-w)·lexical`` for every candidate: ``w`` is :func:`dense_share` in hybrid mode, 1 or 0
    when one half ran alone. The lexical score is on its own scale (the read model divides it by the most the
    query could score) and the dense one is the cosine. A candidate found by one half only counts 0 in the
    other when it has no vector (a lexical hit's cosine comes from its stored vector)."""
    cosines = _cosines(c)
    lexical = {h.memory.id: h.score for h in c.lexical}
    return [(m, dense_weight * max(0.0, cosines.get(i, 0.0)) + (1 - dense_weight) * lexical.get(i, 0.0))
            for i, m in _memories(c).items()]


def _cosines(c: Candidates) -> dict[str, float]:
    return {**c.lexical_cosines, **{m.id: cos for m, cos in c.dense}}


def _memories(c: Candidates) -> dict[str, Memory]:
    return {h.memory.id: h.memory for h in c.lexical} | {m.id: m for m, _ in c.dense}


def _gap(scores: list[float], depth: int) -> float:
    """The best score less the ``depth``-th best (0 when there are fewer: nothing stands out against nothing)."""
    best = sorted(scores, reverse=True)[:depth]
    return best[0] - (best[-1] if len(best) == depth else 0.0) if best else 0.0


def _length_factor(chars: int, long: tuple[int, int] = LONG_CHARS) -> float:
    """1 up to ``long[0]`` characters, falling linearly to :data:`LONG_FLOOR` at ``long[1]``: a long memory's
    vector averages everything it says (and the model reads its first 256 tokens only), so the cosine tells
    such memories apart less well than the words they share with the question."""
    start, end = long
    if chars <= start:
        return 1.0
    return max(LONG_FLOOR, 1.0 - (chars - start) / (end - start) * (1.0 - LONG_FLOOR))


def prior(memory: Memory, now: str) -> float:
    """The static prior of a memory in [0, 1]: the mean of its priority, confidence, tier, access count (log
    scale, saturating) and recency (the original's tier half-life since its last update)."""
    access = min(1.0, math.log1p(memory.access_count) / math.log1p(_ACCESS_SATURATION))
    age_days = (parse_ts(now) - parse_ts(memory.updated_at)).total_seconds() / 86400.0
    parts = (min(max(memory.priority, 0), 10) / 10.0, min(max(memory.confidence, 0.0), 1.0),
             _TIER_PRIOR.get(memory.tier, 0.5), access, decay(memory.tier, age_days))
    return sum(parts) / len(parts)


def _original(c: Candidates, *, mode: str, limit: int, now: str) -> Ranked:
    """The original's ranking (:mod:`producers.memory.ranking`); keyword mode keeps the composite score as it is."""
    if mode == "keyword":
        return Ranked(c.lexical[:limit], None)
    blended = blend(c.lexical, c.lexical_cosines, c.dense, now=now) if mode == "hybrid" else semantic_only(
        c.dense, now=now)
    top = blended[:limit]
    weight = sum(b.weight for b in top) / len(top) if top else None
    return Ranked([ScoredMemory(b.memory, b.score) for b in top], weight)


# -- 4. boost -------------------------------------------------------------------------------------------------

def _depth(namespace: str) -> int:
    return len([s for s in namespace.split("/") if s])


def proximity_boost(hits: list[ScoredMemory], anchor: str | None) -> list[ScoredMemory]:
    """A hierarchical recall (namespace ``a/b/c``, which also reads ``a`` and ``a/b``) divides the score of an
    ancestor's memory by 1 + 0.3 per level above the anchor (the original's rule)."""
    if anchor is None or "/" not in anchor:
        return hits
    boosted = [ScoredMemory(h.memory, h.score / (1 + max(0, _depth(anchor) - _depth(h.memory.namespace)) * 0.3))
               for h in hits]
    return sorted(boosted, key=lambda h: h.score, reverse=True)


# -- 5. budget ------------------------------------------------------------------------------------------------

def apply_budget(hits: list[ScoredMemory], budget: int | None) -> RecallResult:
    """Keep hits in order while their cl100k tokens fit ``budget`` (the first always, flagged as overflow)."""
    if budget is None:
        used = sum(len(h.memory.content.encode("utf-8")) // 4 for h in hits)
        return RecallResult(hits, used, None, False, 0, 0)
    if budget == 0:
        return RecallResult([], 0, 0, False, 0, len(hits))
    kept: list[ScoredMemory] = []
    used = 0
    overflow = False
    for hit in hits:
        cost = count_tokens(hit.memory.content)
        if used + cost > budget:
            if not kept:
                kept.append(hit)
                used += cost
                overflow = True
            break
        kept.append(hit)
        used += cost
    return RecallResult(kept, used, budget, overflow, max(0, budget - used), len(hits) - len(kept))
