"""An in-memory keyword index of the SQLite read model that ranks exactly as FTS5's bm25, for recall's lexical half.

The postings and their scoring are :mod:`projectors.sqlite.lexical_postings`. This module decides when they may
answer: each query first reads the change feed's generation and last sequence number (one statement when nothing
changed), brings the postings forward from the feed, and otherwise answers None at once, so that FTS5 answers
(the same answers): while there are no postings yet, during a bulk replay, inside a write transaction of the
querying connection, and while a rebuild runs.

Over a database file the postings are built in the background (:mod:`projectors.sqlite.lexical_build`): the
first build starts when the index starts (the read model opening), and every rebuild (the generation moved, the
feed was pruned past the postings, over a quarter of the rows changed) drops the old postings and starts one;
queries never wait for a build. An in-memory database is private to its connection, so there the first query
builds the postings itself (small databases: tests).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence

from projectors.queries import LexicalIndexStatus
from projectors.sqlite.lexical_build import BackgroundBuild
from projectors.sqlite.lexical_postings import Matches, Postings, build, feed_head, snapshot
from projectors.sqlite.unicode61 import Unicode61

__all__ = ["LexicalIndex", "Matches"]


def _no_pause() -> None:
    """An in-memory database's build runs inside the query: nothing to interleave with."""


class LexicalIndex:
    """The postings of ``memories_fts`` in memory, built in the background over the database file at ``path``
    (at the first query without one) and kept up to date from the change feed at each query."""

    def __init__(self, path: str | None = None) -> None:
        self._tokens = Unicode61()
        self._lock = threading.Lock()  # one caller at a time brings the postings forward and reads them
        self._postings: Postings | None = None
        self._ready = threading.Event()
        self._closed = False
        self._builder = BackgroundBuild(path, self._tokens, self._publish) if path else None

    @property
    def rows(self) -> int:
        postings = self._postings
        return postings.rows if postings is not None else 0

    def start(self) -> None:
        """Start building in the background (over a file; an in-memory database builds at its first query)."""
        if self._builder is not None:
            self._builder.request()

    def wait_ready(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for postings to answer from; whether there are."""
        return self._ready.wait(timeout)

    def status(self) -> LexicalIndexStatus:
        with self._lock:
            postings = self._postings
            if postings is not None:
                return LexicalIndexStatus("ready", postings.rows, postings.memory_bytes())
        builder = self._builder
        state = ("building" if builder is not None and builder.building
                 else "failed" if builder is not None and builder.failing else "waiting")
        return LexicalIndexStatus(state, 0, 0)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._postings = None
        if self._builder is not None:
            self._builder.close()  # before the tokenizer it uses goes
        self._tokens.close()

    def matches(self, db: sqlite3.Connection, terms: Sequence[str]) -> Matches | None:
        """The rows matching any of ``terms`` (each an FTS5 phrase ``"term"``) scored by bm25 as FTS5 scores
        ``"t1" OR "t2" …`` over ``db``'s committed state, or None where FTS5 must answer: a term FTS5 reads as
        a phrase of several tokens (or none), no postings yet (a build under way), a bulk replay under way, or
        ``db`` inside a write transaction."""
        tokens = [self._tokens.term(t) for t in terms]
        if any(t is None for t in tokens):
            return None
        with self._lock:
            postings = self._current(db)
            return postings.scored([str(t) for t in tokens]) if postings is not None else None

    def _current(self, db: sqlite3.Connection) -> Postings | None:
        """The postings brought to ``db``'s committed state, or None where FTS5 must answer (the caller holds
        the lock)."""
        if db.in_transaction or self._closed:
            return None  # uncommitted changes of this connection's own may still roll back: FTS5 answers
        generation, last = feed_head(db)
        postings = self._postings
        if generation is None:
            return None
        if postings is not None and postings.at(generation, last):
            return postings  # the common case: one indexed read
        if postings is None and self._builder is not None:
            self._builder.request()  # none yet: the build runs (or starts) beside this query
            return None
        with snapshot(db):
            if postings is not None and postings.follow(db):
                return postings
            if self._builder is not None:  # only a rebuild helps: FTS5 answers until it is done
                self._postings = None
                self._ready.clear()
                self._builder.request()
                return None
            self._postings = build(db, self._tokens, _no_pause)  # an in-memory database: small, built here
            if self._postings is not None:
                self._ready.set()
            return self._postings

    def _publish(self, postings: Postings) -> None:
        """Called by the build thread with postings current as of its last read: they answer from now on (the
        next query brings them forward from the feed if anything was written since)."""
        with self._lock:
            if not self._closed:
                self._postings = postings
                self._ready.set()
