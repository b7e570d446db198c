"""Exact pruning of keyword recall on SQLite: which FTS matches can still be in the top ``limit``.

Recall's score is ``bm25 + static + recency`` (static: ``boost + tier_bonus`` from ``memory_rank``). A context
holding a common word matches tens of thousands of memories at 100k, and computing bm25 for each match (and
joining each with ``memory_rank``) is what recall's time goes to. Most of it is avoidable, exactly (the idea of
MaxScore in search engines):

* FTS5's bm25 (``fts5_aux.c``) adds, per query phrase, ``idf·tf·(k1+1) / (tf + k1·(1-b+b·dl/avgdl))``: below
  ``idf·(k1+1)`` for any term frequency and row length. ``idf = ln((N-n+0.5)/(n+0.5))`` (1e-6 when not positive)
  grows with the row count ``N``, so the largest rowid (at least ``N``) gives an upper bound.
* The recency term ``1/(1 + 0.1·days since update)`` is at most 1 for a memory not updated in the future; those
  updated in the future are always ranked.
* A probe (rows holding every phrase, two of the rarest, or the rarest) is scored by each group's own bm25,
  which leaves out the other phrases' non-negative shares: F, the ``limit``-th best of these lower bounds, is
  at most the final ``limit``-th best.
* Phrases are skipped most common first while a memory holding only skipped phrases scores below F unless its
  static part is at least ``F - (their bounds) - 1``; the memories above that floor (an index range scan, kept
  small) are ranked whatever they hold. Only the rows of the other phrases, those and the ones updated in the
  future are ranked, by the same SQL as before: the answer is exactly that of ranking every match.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Any

__all__ = ["FTS5_K1", "PROBE_ROWS", "PRUNE_FROM", "STATIC_ROWS", "Pruned", "fts5_idf",
           "phrase_bound", "phrase_hits", "prune", "rowid_list"]

#: FTS5's bm25 k1; a phrase's share of the score is below ``idf·(k1+1)``.
FTS5_K1 = 1.2
#: Recall ranks every match when there are at most this many: pruning costs a few queries of its own.
PRUNE_FROM = 1000
#: A phrase is skipped only while the memories whose static part could still lift them past F, holding only
#: skipped phrases, are fewer than this: they are ranked whatever they hold.
STATIC_ROWS = 2000
#: The probe for a lower bound of the top ``limit`` scores takes at most this many rows of each of its queries.
PROBE_ROWS = 50
# Float rounding in SQLite's arithmetic (bm25 is a sum of a few terms): far below any score difference.
_EPS = 1e-6


def fts5_idf(rows: int, hits: int) -> float:
    """FTS5's idf of a phrase found in ``hits`` of ``rows`` rows."""
    idf = math.log((rows - hits + 0.5) / (hits + 0.5))
    return idf if idf > 0.0 else 1e-6


def phrase_bound(rows: int, hits: int) -> float:
    """An upper bound of one phrase's share of bm25 in any row, ``rows`` at least FTS5's row count."""
    return (FTS5_K1 + 1.0) * fts5_idf(rows, hits)


def _count(db: sqlite3.Connection, match: str) -> int:
    (n,) = db.execute("SELECT count(*) FROM memories_fts WHERE memories_fts MATCH ?", (match,)).fetchone()
    return int(n)


def phrase_hits(db: sqlite3.Connection, phrases: Sequence[str]) -> dict[str, int]:
    """How many rows each distinct phrase matches. Their sum bounds the OR of them from above, without
    walking the union (a third of the pruning's cost for a query of common words)."""
    return {p: _count(db, p) for p in dict.fromkeys(phrases)}


@dataclass(frozen=True, slots=True)
class Pruned:
    """Rank only the matches of ``essential`` (an FTS5 query) and the rows ``extra``: recall's top lies there."""

    essential: str
    extra: list[int]


def _static_max(db: sqlite3.Connection) -> float:
    row = db.execute("SELECT boost + tier_bonus FROM memory_rank INDEXED BY memory_rank_static "
                     "ORDER BY boost + tier_bonus DESC LIMIT 1").fetchone()
    return float(row[0])


def _probe(db: sqlite3.Connection, hits: dict[str, int], where: str, params: dict[str, Any], limit: int,
           score: Callable[[list[int]], list[float]], lower: Callable[[str], list[tuple[int, float]]]) -> list[float]:
    """Lower bounds of the scores of some matches likely near the top, best first, one per memory: rows holding
    every phrase, or two of the rarest, or the rarest one (at most :data:`PROBE_ROWS` each), each scored by
    its own group's bm25, a part of the full query's sum (every phrase adds a non-negative share). Reading
    only the rare phrases' rows, it never walks a common phrase's rows. When these are too few, the
    ``limit`` matches of largest static part are scored exactly too."""
    rarest = sorted(hits, key=hits.__getitem__)
    groups = dict.fromkeys([" ".join(rarest), *(f"{a} {b}" for a, b in combinations(rarest[:4], 2)), rarest[0]])
    best: dict[int, float] = {}
    for group in groups:
        for rowid, value in lower(group):
            best[rowid] = max(value, best.get(rowid, value))
    if len(best) >= limit:
        return sorted(best.values(), reverse=True)
    extra = {int(r[0]) for r in db.execute(
        "SELECT r.rid FROM memory_rank r INDEXED BY memory_rank_static WHERE r.rid IN (SELECT rowid FROM "
        f"memories_fts WHERE memories_fts MATCH :match) AND {where} ORDER BY r.boost + r.tier_bonus DESC "
        "LIMIT :limit", {**params, "limit": limit})}
    return sorted(score(sorted(best.keys() | extra)), reverse=True)


def prune(db: sqlite3.Connection, phrases: Sequence[str], where: str, params: dict[str, Any], limit: int,
          score: Callable[[list[int]], list[float]], lower: Callable[[str], list[tuple[int, float]]],
          *, hits: dict[str, int]) -> Pruned | None:
    """Which matches recall must rank to find its top ``limit`` exactly, or None to rank every match.

    ``phrases`` are the query's FTS5 phrases as joined by OR into ``params["match"]`` (quoted, repeats kept);
    ``where`` is the recall filter over ``memory_rank r`` with its parameters in ``params``; ``score(rowids)``
    gives the recall scores of those of ``rowids`` that match and pass the filter; ``lower(group)`` gives
    (rowid, score) of at most :data:`PROBE_ROWS` matches of the FTS5 query ``group`` (some of the phrases)
    that pass the filter, scored with that query's bm25; ``hits`` counts the rows each distinct phrase finds
    (:func:`phrase_hits`).

    A memory holding only skipped phrases scores at most ``their bounds + static + 1``: below F unless its
    static part reaches the floor, and those that do are ranked (``extra``) with the ones updated in the future.
    """
    if limit <= 0 or sum(hits.values()) <= max(PRUNE_FROM, limit):  # at least the rows the query matches
        return None
    (rows,) = db.execute("SELECT max(rid) FROM memory_rank").fetchone()  # ≥ the row count: rowids are distinct
    if rows is None:
        return None  # a bulk replay not yet finished: no rank rows to bound with
    scores = _probe(db, hits, where, params, limit, score, lower)
    if len(scores) < limit:
        return None  # fewer than ``limit`` matches pass the filter
    top = scores[limit - 1]
    static_max = _static_max(db)
    bounds = {p: phrase_bound(int(rows), n) for p, n in hits.items()}
    spent, skipped, floor = 0.0, set(), math.inf
    for phrase in sorted(bounds, key=bounds.__getitem__):
        below = top - (spent + bounds[phrase] * phrases.count(phrase)) - 1.0 - _EPS
        if below <= static_max and _static_rows(db, below) >= STATIC_ROWS:
            break
        spent += bounds[phrase] * phrases.count(phrase)
        skipped.add(phrase)
        floor = below
    if not skipped or len(skipped) == len(hits):
        return None  # nothing to skip; or F came from a memory updated in the future, whose score is unbounded
    extra = [int(r[0]) for r in db.execute(
        "SELECT rid FROM memory_rank INDEXED BY memory_rank_static WHERE boost + tier_bonus >= ?", (floor,))]
    extra += [int(r[0]) for r in db.execute(
        "SELECT rid FROM memory_rank INDEXED BY memory_rank_updated WHERE updated_jd > ?", (params["now_jd"],))]
    return Pruned(" OR ".join(p for p in dict.fromkeys(phrases) if p not in skipped), extra)


def _static_rows(db: sqlite3.Connection, floor: float) -> int:
    """How many memories have a static part of at least ``floor``, counted up to :data:`STATIC_ROWS`."""
    (n,) = db.execute("SELECT count(*) FROM (SELECT 1 FROM memory_rank INDEXED BY memory_rank_static "
                      "WHERE boost + tier_bonus >= ? LIMIT ?)", (floor, STATIC_ROWS)).fetchone()
    return int(n)


def rowid_list(rowids: list[int]) -> str:
    """A rowid list as one bound parameter (``json_each``): no limit on the number of SQL variables."""
    return json.dumps(rowids)
