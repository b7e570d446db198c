"""How many memories each keyword phrase matches, remembered until the FTS5 index changes.

Keyword recall needs each phrase's row count (:func:`projectors.sqlite.pruning.phrase_hits`: the bm25 bounds
that normalise our lexical score, the pruning and the two-thread split). Counting a common word walks its whole
doclist: at 10^5 memories a recall's counts took 0.9 ms p50 but 5.3 ms p95, the contexts holding words found in
10-27 thousand memories. Those common words come back in query after query, and their counts change only when the
index does, so they are kept, keyed by the index's structure record: FTS5 rewrites that record (its segment
list and write counter) on every committed change to the index, and on nothing else (a touch, which changes
no indexed column, keeps it). A count is therefore always the one a fresh ``count(*)`` would give. Inside an
open transaction (the projector's, on a shared connection) the index may hold changes not yet flushed to a
segment, so nothing is kept or reused then.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from projectors.sqlite.pruning import phrase_hits

__all__ = ["MAX_PHRASES", "PhraseCounts"]

#: Past this many remembered phrases the memory is cleared (a cheap bound; the counts come back as used).
MAX_PHRASES = 4096
# The FTS5 structure record's rowid in the %_data table (FTS5_STRUCTURE_ROWID in fts5_index.c).
_STRUCTURE = "SELECT block FROM memories_fts_data WHERE id = 10"


class PhraseCounts:
    """:func:`phrase_hits` over one connection, each phrase counted once per state of the index."""

    def __init__(self) -> None:
        self._structure: bytes | None = None
        self._counts: dict[str, int] = {}
        #: Phrases counted in the index rather than remembered (for tests and profiles).
        self.counted = 0

    def hits(self, db: sqlite3.Connection, phrases: Sequence[str]) -> dict[str, int]:
        """How many rows each distinct phrase of ``phrases`` matches (as :func:`phrase_hits`)."""
        if db.in_transaction:
            self.counted += len(set(phrases))
            return phrase_hits(db, phrases)
        row = db.execute(_STRUCTURE).fetchone()
        structure = bytes(row[0]) if row is not None else None
        if structure != self._structure or len(self._counts) > MAX_PHRASES:
            self._structure, self._counts = structure, {}
        missing = [p for p in dict.fromkeys(phrases) if p not in self._counts]
        self.counted += len(missing)
        self._counts.update(phrase_hits(db, missing))
        return {p: self._counts[p] for p in dict.fromkeys(phrases)}
