"""The original ai-memory's hybrid recall formula, as pure functions (ai-memory.md §5, "Hybrid path").

1. Candidates: keyword (FTS) hits, up to ``max(3·limit, 30)``, each with the cosine of its stored vector; and
   ANN hits, ``k = max(5·limit, 50)``, kept only when cosine > 0.2.
2. Blend: ``w·cosine + (1-w)·fts/max_fts`` where the semantic weight ``w`` is 0.50 for content up to 500
   characters, 0.15 from 5000, linear in between (long texts embed worse: 256 tokens see only their start).
3. Decay: ``* exp(-ln2 · age_days / half_life[tier])`` with half-lives 7, 30 and 365 days, age from creation.
4. Sort, truncate to the limit; then the namespace proximity boost (in the service, shared with keyword mode).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from projectors import ScoredMemory, query_tokens
from schemas import Memory, parse_ts

__all__ = [
    "COSINE_GATE",
    "HALF_LIFE_DAYS",
    "BlendedHit",
    "ann_k",
    "blend",
    "blend_weight",
    "decay",
    "fts_limit",
    "keyword_context",
    "semantic_only",
]

COSINE_GATE = 0.2
HALF_LIFE_DAYS = {"short": 7.0, "mid": 30.0, "long": 365.0}
_SHORT_CHARS, _LONG_CHARS = 500, 5000
_W_SHORT, _W_LONG = 0.50, 0.15


# Keyword queries join every token with OR; a 2 MiB context would be an FTS5 query of ~10^5 phrases (about a
# minute in SQLite). Past this many tokens only the first occurrences of distinct tokens are kept.
MAX_KEYWORD_TOKENS = 256


def keyword_context(context: str) -> str:
    """``context`` unchanged when it is of a sane size, else its first distinct tokens (bounded FTS cost)."""
    tokens = query_tokens(context)
    if len(tokens) <= MAX_KEYWORD_TOKENS:
        return context
    return " ".join(list(dict.fromkeys(tokens))[:MAX_KEYWORD_TOKENS])


def fts_limit(limit: int) -> int:
    return max(3 * limit, 30)


def ann_k(limit: int) -> int:
    return max(5 * limit, 50)


def blend_weight(content_chars: int) -> float:
    """The semantic share of the blend for a memory whose content has this many characters."""
    if content_chars <= _SHORT_CHARS:
        return _W_SHORT
    if content_chars >= _LONG_CHARS:
        return _W_LONG
    frac = (content_chars - _SHORT_CHARS) / (_LONG_CHARS - _SHORT_CHARS)
    return _W_SHORT + (_W_LONG - _W_SHORT) * frac


def decay(tier: str, age_days: float) -> float:
    half_life = HALF_LIFE_DAYS.get(tier, HALF_LIFE_DAYS["mid"])
    return math.exp(-math.log(2) * max(0.0, age_days) / half_life)


def _age_days(memory: Memory, now: str) -> float:
    return (parse_ts(now) - parse_ts(memory.created_at)).total_seconds() / 86400.0


@dataclass(frozen=True, slots=True)
class BlendedHit:
    memory: Memory
    score: float
    cosine: float
    fts: float
    weight: float


def blend(fts_hits: Iterable[ScoredMemory], fts_cosines: dict[str, float],
          semantic: Iterable[tuple[Memory, float]], *, now: str) -> list[BlendedHit]:
    """Merge both candidate lists and score each memory once, best first.

    ``fts_cosines`` holds the cosine of each keyword hit that has a vector (others count 0). ``semantic``
    must already be gated (cosine > :data:`COSINE_GATE`).
    """
    fts = list(fts_hits)
    max_fts = max((h.score for h in fts), default=0.0)
    candidates: dict[str, tuple[Memory, float, float]] = {}
    for hit in fts:
        norm = hit.score / max_fts if max_fts > 0 else 0.0
        candidates[hit.memory.id] = (hit.memory, fts_cosines.get(hit.memory.id, 0.0), norm)
    for memory, cosine in semantic:
        if memory.id not in candidates:
            candidates[memory.id] = (memory, cosine, 0.0)
    out = []
    for memory, cosine, norm in candidates.values():
        w = blend_weight(len(memory.content))
        score = (w * cosine + (1 - w) * norm) * decay(memory.tier, _age_days(memory, now))
        out.append(BlendedHit(memory, score, cosine, norm, w))
    out.sort(key=lambda h: (-h.score, h.memory.id))
    return out


def semantic_only(semantic: Iterable[tuple[Memory, float]], *, now: str) -> list[BlendedHit]:
    """Rank by cosine alone (with the same decay), for comparison runs."""
    out = [BlendedHit(m, c * decay(m.tier, _age_days(m, now)), c, 0.0, 1.0) for m, c in semantic]
    out.sort(key=lambda h: (-h.score, h.memory.id))
    return out
