"""The postings of the SQLite read model's FTS5 index as numpy arrays, ranking exactly as FTS5's bm25.

Recall's lexical half asks for the best ``-bm25(memories_fts)`` matches of an OR of single-word phrases. FTS5
computes bm25 row by row through its auxiliary-function API (a few µs per match; tens of thousands of matches
for a context with a common word at 10^5 memories). :class:`Postings` holds the same postings as flat arrays:
per term, the slots of the rows holding it and how often (over title, content and tags), and per slot its rowid
and token count. A query's score is then a few vector operations per term, summed per row with ``np.bincount``:
``idf·tf·(k1+1) / (tf + k1·(1 - b + b·dl/avgdl))`` with FTS5's constants, idf and averages, evaluated in the
order ``fts5_aux.c`` evaluates it, so the scores are FTS5's to the last bit and ties fall to the rowid as before.

They are built by :func:`build` from one committed state of the ``memories`` table and follow later states
through the change feed the schema's triggers keep (``memory_changes``: the rowid of every memory whose indexed
text appeared, changed or went, in commit order; a generation in ``model_meta`` renewed by every bulk replay):
:meth:`Postings.follow` re-reads the rows that changed since, or says that only a rebuild can help (the
generation moved, the feed no longer reaches back far enough, too much changed). A row that changed leaves its
old slot dead (a tombstone); dead slots and postings added since the last build are folded in by
:meth:`Postings._compact`. Who builds and when is :mod:`projectors.sqlite.lexical_index`'s business.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import chain
from typing import Any

import numpy as np
import numpy.typing as npt

from projectors.sqlite.schema import GENERATION_KEY
from projectors.sqlite.unicode61 import Unicode61

__all__ = ["BUILD_CHUNK", "Matches", "Postings", "build", "feed_head", "snapshot"]

# fts5_aux.c's bm25 constants.
K1 = 1.2
B = 0.75
#: Rebuild rather than catch up when this share of the indexed rows changed since the last query.
REBUILD_SHARE = 0.25
#: Fold dead slots and new postings into the main arrays past this share of them (and at least the minimum).
COMPACT_SHARE = 0.125
COMPACT_MIN = 20_000
#: Memories read and tokenized at a time when the index is built.
BUILD_CHUNK = 10_000

Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]
Slots = npt.NDArray[np.int32]
Counts = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class Matches:
    """Every row matching a query, with its bm25 score (higher is better), and each term's row count."""

    rids: Ints
    scores: Floats
    hits: list[int]

    def __len__(self) -> int:
        return len(self.rids)

    def best(self, n: int) -> list[tuple[int, float]]:
        """The ``n`` best (rowid, score), best first, ties by rowid (FTS5's ORDER BY score DESC, rowid)."""
        pick: Ints = np.arange(len(self.rids))
        if n < len(self.rids):
            kth = np.partition(self.scores, len(self.scores) - n)[len(self.scores) - n]
            pick = np.flatnonzero(self.scores >= kth)  # the n best and every row tied with the n-th
        order = pick[np.lexsort((self.rids[pick], -self.scores[pick]))][:n]
        return list(zip(self.rids[order].tolist(), self.scores[order].tolist(), strict=True))


class Postings:
    """The postings of ``memories_fts`` at one committed state of the read model (``generation``, ``seq``).

    Not thread-safe: :class:`~projectors.sqlite.lexical_index.LexicalIndex` builds one in a thread of its own,
    then reads and updates it under its lock."""

    def __init__(self, tokens: Unicode61, generation: str, seq: int) -> None:
        self._tokens = tokens
        self.generation, self.seq = generation, seq
        self._rid: Ints = np.zeros(0, np.int64)  # per slot: the row's rowid
        self._dl: Floats = np.zeros(0, np.float64)  # per slot: its tokens over all columns
        self._alive = np.zeros(0, np.bool_)  # per slot: not since replaced or deleted
        self._slot_of: dict[int, int] = {}  # live rowid -> slot
        self._total = 0  # tokens of the live rows
        self._vocab: dict[str, int] = {}  # token -> term id
        self._word_bytes = 0  # the vocabulary's str objects, counted as they come (no pass over it to report)
        # Postings by term: those of the last build in CSR form, those added since as (term, slot, tf) rows
        # sorted by term.
        self._offsets: Ints = np.zeros(1, np.int64)
        # Slots as int32 and counts as float32 (exact up to 2^24): half the bytes of the widest postings.
        self._slots: Slots = np.zeros(0, np.int32)
        self._tfs: Counts = np.zeros(0, np.float32)
        self._new: tuple[Ints, Slots, Counts] = _no_postings()

    @property
    def rows(self) -> int:
        return len(self._slot_of)

    @property
    def terms(self) -> int:
        return len(self._vocab)

    def memory_bytes(self) -> int:
        """The arrays' bytes plus an estimate of the two dictionaries (CPython: ~100 bytes an entry)."""
        arrays = (self._rid, self._dl, self._alive, self._offsets, self._slots, self._tfs, *self._new)
        return sum(a.nbytes for a in arrays) + self._word_bytes + 100 * (len(self._vocab) + len(self._slot_of))

    def at(self, generation: str, seq: int) -> bool:
        return generation == self.generation and seq == self.seq

    # -- queries --------------------------------------------------------------------------------------------

    def scored(self, tokens: Sequence[str]) -> Matches:
        """The rows holding any of ``tokens``, scored by bm25 as FTS5 scores the OR of their phrases."""
        rows, avgdl = self.rows, self._total / self.rows if self.rows else 0.0
        slots: list[Slots] = []
        parts: list[Floats] = []
        hits: list[int] = []
        for token in tokens:
            slot, tf = self._postings(token)
            n = len(slot)
            idf = math.log((rows - n + 0.5) / (n + 0.5))
            idf = idf if idf > 0.0 else 1e-6
            # Operation for operation as fts5Bm25Function, so each share is FTS5's to the bit.
            parts.append(idf * ((tf * (K1 + 1.0)) / (tf + K1 * ((1.0 - B) + (B * self._dl[slot]) / avgdl))))
            slots.append(slot)
            hits.append(n)
        every = np.concatenate(slots) if slots else np.zeros(0, np.int64)
        if not len(every):
            return Matches(np.zeros(0, np.int64), np.zeros(0), hits)
        # bincount adds each row's shares in input order, phrase by phrase from 0.0: FTS5's order of addition.
        summed: Floats = np.bincount(every, weights=np.concatenate(parts),
                                     minlength=len(self._rid)).astype(np.float64, copy=False)
        matched = np.flatnonzero(summed)  # every share is positive (idf ≥ 1e-6, tf ≥ 1)
        return Matches(self._rid[matched], summed[matched], hits)

    def _postings(self, token: str | None) -> tuple[Slots, Floats]:
        """The live slots holding ``token`` and its count in each."""
        term = self._vocab.get(token) if token is not None else None
        if term is None:
            return np.zeros(0, np.int32), np.zeros(0)
        slot, tf = self._slots[0:0], self._tfs[0:0]
        if term + 1 < len(self._offsets):
            lo, hi = self._offsets[term], self._offsets[term + 1]
            slot, tf = self._slots[lo:hi], self._tfs[lo:hi]
        terms, new_slots, new_tfs = self._new
        lo, hi = np.searchsorted(terms, term), np.searchsorted(terms, term, side="right")
        if hi > lo:
            slot, tf = np.concatenate((slot, new_slots[lo:hi])), np.concatenate((tf, new_tfs[lo:hi]))
        live = self._alive[slot]
        if not live.all():
            slot, tf = slot[live], tf[live]
        return slot, tf.astype(np.float64)

    # -- keeping up -----------------------------------------------------------------------------------------

    def follow(self, db: sqlite3.Connection) -> bool:
        """Bring these postings to ``db``'s committed state from the change feed (the caller holds a read
        transaction); False where only a rebuild can: the generation moved (a bulk replay), the feed was pruned
        past them, or over a quarter of the rows (and 20,000) changed."""
        generation, last = feed_head(db)
        if generation != self.generation:
            return False
        (first,) = db.execute("SELECT min(seq) FROM memory_changes").fetchone()
        if (first is not None and first > self.seq + 1) or last < self.seq:  # pruned past us
            return False
        return last == self.seq or self._catch_up(db, last)

    def _catch_up(self, db: sqlite3.Connection, last: int) -> bool:
        changed = db.execute(
            "SELECT c.rid, m.rowid IS NOT NULL, m.title, m.content, m.tags FROM "
            "(SELECT DISTINCT rid FROM memory_changes WHERE seq > ?) c LEFT JOIN memories m ON m.rowid = c.rid",
            (self.seq,)).fetchall()
        if len(changed) > REBUILD_SHARE * max(self.rows, 1) and len(changed) > COMPACT_MIN:
            return False
        for row in changed:
            self._drop(int(row[0]))
        present = [row for row in changed if row[1]]
        self._add([int(r[0]) for r in present], [tuple(r[2:]) for r in present])
        self.seq = last
        dead = len(self._rid) - self.rows
        if max(dead, len(self._new[0])) > max(COMPACT_MIN, COMPACT_SHARE * len(self._slots)):
            self._compact()
        return True

    def _drop(self, rid: int) -> None:
        slot = self._slot_of.pop(rid, None)
        if slot is not None:
            self._alive[slot] = False
            self._total -= int(self._dl[slot])

    def _add(self, rids: list[int], docs: list[tuple[Any, ...]]) -> None:
        """New slots for ``rids`` (not in the index) holding ``docs``; their postings join the new ones."""
        if not rids:
            return
        token_lists = self._tokens.documents(docs)
        lengths = np.fromiter(map(len, token_lists), np.int64, len(token_lists))
        words = list(chain.from_iterable(token_lists))
        unseen = [w for w in dict.fromkeys(words) if w not in self._vocab]
        self._word_bytes += sum(len(w) + 49 for w in unseen)  # a str object's size
        self._vocab.update(zip(unseen, range(len(self._vocab), len(self._vocab) + len(unseen)), strict=True))
        terms = np.fromiter(map(self._vocab.__getitem__, words), np.int64, len(words))
        first = len(self._rid)
        self._rid = np.concatenate((self._rid, np.asarray(rids, np.int64)))
        self._dl = np.concatenate((self._dl, lengths.astype(np.float64)))
        self._alive = np.concatenate((self._alive, np.ones(len(rids), np.bool_)))
        self._slot_of.update(zip(rids, range(first, first + len(rids)), strict=True))
        self._total += int(lengths.sum())
        # One posting per (term, row): count the pairs; np.unique sorts them by term, then slot.
        span = first + len(rids)
        pairs, tfs = np.unique(terms * span + np.repeat(np.arange(first, span), lengths), return_counts=True)
        old_terms, old_slots, old_tfs = self._new
        merged_terms = np.concatenate((old_terms, pairs // span))
        order = np.argsort(merged_terms, kind="stable")
        self._new = (merged_terms[order], np.concatenate((old_slots, (pairs % span).astype(np.int32)))[order],
                     np.concatenate((old_tfs, tfs.astype(np.float32)))[order])

    def _compact(self) -> None:
        """Fold the new postings into the CSR arrays, leaving out dead slots, and renumber the live slots."""
        count = np.diff(self._offsets)
        terms = np.concatenate((np.repeat(np.arange(len(count)), count), self._new[0]))
        slots = np.concatenate((self._slots, self._new[1]))
        tfs = np.concatenate((self._tfs, self._new[2]))
        keep = self._alive[slots]
        renumber = np.cumsum(self._alive) - 1
        terms, slots, tfs = terms[keep], renumber[slots[keep]].astype(np.int32), tfs[keep]
        order = np.argsort(terms, kind="stable")  # two sorted runs: a merge
        self._slots, self._tfs = slots[order], tfs[order]
        self._offsets = np.concatenate(([0], np.cumsum(np.bincount(terms, minlength=len(self._vocab)))))
        self._rid, self._dl = self._rid[self._alive], self._dl[self._alive]
        self._alive = np.ones(len(self._rid), np.bool_)
        self._slot_of = dict(zip(self._rid.tolist(), range(len(self._rid)), strict=True))
        self._new = _no_postings()


def build(db: sqlite3.Connection, tokens: Unicode61, between_chunks: Callable[[], None]) -> Postings | None:
    """Postings of everything in the ``memories`` table, read in the caller's read transaction (the feed's head
    and the rows from one committed state), or None during a bulk replay (no generation). ``between_chunks`` is
    called after each chunk: it may raise to stop the build."""
    generation, last = feed_head(db)
    if generation is None:
        return None
    postings = Postings(tokens, generation, last)
    rows = db.execute("SELECT rowid, title, content, tags FROM memories ORDER BY rowid")
    # A chunk at a time, folded in as it comes: the token lists of every memory at once (Python strings) took
    # six times the index's own size at 10^5.
    while chunk := rows.fetchmany(BUILD_CHUNK):
        postings._add([int(r[0]) for r in chunk], [tuple(r[1:]) for r in chunk])
        postings._compact()
        between_chunks()
    return postings


def _no_postings() -> tuple[Ints, Slots, Counts]:
    return np.zeros(0, np.int64), np.zeros(0, np.int32), np.zeros(0, np.float32)


def feed_head(db: sqlite3.Connection) -> tuple[str | None, int]:
    """The feed's generation (None during a bulk replay, or in a database without the feed) and its last
    sequence number (0 when empty)."""
    try:
        generation, last = db.execute(
            "SELECT (SELECT value FROM model_meta WHERE key = ?), (SELECT max(seq) FROM memory_changes)",
            (GENERATION_KEY,)).fetchone()
    except sqlite3.OperationalError:  # no such table: not a read model this schema made
        return None, 0
    return (None if generation is None else str(generation)), int(last or 0)


@contextmanager
def snapshot(db: sqlite3.Connection) -> Iterator[None]:
    """One read transaction for the reads inside: the feed's head and the rows it names are read from the same
    committed state."""
    db.execute("BEGIN")
    try:
        yield
    finally:
        db.execute("COMMIT")
