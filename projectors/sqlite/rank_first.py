"""Keyword candidates ranked before they are filtered, when the filter lets most memories through.

Recall's lexical half (``recall_lexical``) wants the ``limit`` best FTS5 matches by bm25 among the memories the
reader may see. Joining every match with ``memory_rank`` to test the filter cost about 40% of that query at
10^5 memories (thousands of matches, one B-tree lookup each). When the filter is broad (expiry, visibility,
hidden subtrees: what every recall carries), ranking the matches alone and testing the filter on the few best
gives the same answer: the best ``OVERFETCH · limit`` matches in the query's total order (score, then rowid)
are ranked, the filter is tested on those, and the first ``limit`` that pass are the answer, unless fewer than
``limit`` passed while more matches remain, in which case the caller runs the joined query after all. A narrow
filter (a namespace, a tier, a tag…) goes straight to the joined query, which is then the cheaper one.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

from projectors.queries import MemoryFilter
from projectors.sqlite.pruning import rowid_list

__all__ = ["OVERFETCH", "RANKED", "RANK_KEY", "is_broad", "passing", "passing_in_chunks"]

#: How many times ``limit`` matches are ranked before the filter: a broad filter drops few of them.
OVERFETCH = 2
#: The fewest matches the lexical index's ranking is tested on first (a small ``limit`` would say little).
FIRST_CHUNK = 100
#: The matches alone, best first by bm25 (higher is better); ``_best`` adds the rowid bounds and the order.
RANKED = "SELECT fts.rowid AS rid, -bm25(memories_fts) AS score FROM memories_fts fts WHERE memories_fts MATCH :match"
#: The tie-break column of :data:`RANKED`: the rowid, as ``r.rid`` is in the joined query.
RANK_KEY = "fts.rowid"

# Filter fields that usually leave a small share of the memories: the joined query is cheaper for them.
_NARROW = ("namespace", "namespaces", "tier", "min_priority", "since", "until", "tag", "agent_id")

Ranked = list[tuple[int, float]]


def is_broad(flt: MemoryFilter) -> bool:
    """Whether ``flt`` restricts only expiry and visibility (most memories pass it)."""
    return all(getattr(flt, name) is None for name in _NARROW)


def passing(db: sqlite3.Connection, best: Callable[[int], Ranked], where: str, params: dict[str, Any], *,
            limit: int) -> Ranked | None:
    """The ``limit`` best of ``best(n)`` (the ``n`` best matches, in order) that pass ``where`` (over
    ``memory_rank r``), or None when the matches ranked were not enough to tell (the caller ranks with the
    filter joined instead)."""
    fetch = limit * OVERFETCH
    ranked = best(fetch)
    found = _passed(db, ranked, where, params)
    if len(found) >= limit or len(ranked) < fetch:  # enough passed, or every match was ranked
        return found[:limit]
    return None


def passing_in_chunks(db: sqlite3.Connection, best: Callable[[int], Ranked], where: str, params: dict[str, Any],
                      *, limit: int, matches: int) -> Ranked | None:
    """The ``limit`` best of the ``matches`` matches that pass ``where``, when ranking every match is cheap (the
    lexical index): the filter is tested on the best ``OVERFETCH · limit`` (at least :data:`FIRST_CHUNK`),
    then on chunks four times larger each, until enough passed or no match is left. None when the share that
    passed so far says that more than an eighth of the matches would have to be tested (a narrow filter): the
    joined query, which tests the filter inside FTS5's scan, is then the cheaper one."""
    found: Ranked = []
    done, size = 0, max(limit * OVERFETCH, FIRST_CHUNK)  # enough rows to estimate the share that passes
    while len(found) < limit:
        ranked = best(done + size)
        found += _passed(db, ranked[done:], where, params)
        if len(ranked) < done + size:
            break  # every match was tested
        done, size = done + size, size * 4
        if len(found) < limit and (limit - len(found)) * done > len(found) * matches / 8:
            return None
    return found[:limit]


def _passed(db: sqlite3.Connection, ranked: Ranked, where: str, params: dict[str, Any]) -> Ranked:
    """Those of ``ranked`` that pass ``where``, in order."""
    if not ranked:
        return []
    sql = f"SELECT r.rid FROM memory_rank r WHERE r.rid IN (SELECT value FROM json_each(:among)) AND {where}"
    keep = {int(row[0]) for row in db.execute(sql, {**params, "among": rowid_list([rid for rid, _ in ranked])})}
    return [(rid, score) for rid, score in ranked if rid in keep]
