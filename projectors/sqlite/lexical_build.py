"""Builds the lexical index's postings in a thread of its own, on a read connection of its own.

A build reads and tokenizes the whole ``memories`` table: seconds at 10^5 memories, tens of seconds at 10^6. Done
inside a recall it blocked that recall (and every request queued behind it); here it runs beside them. One read
transaction on its own connection gives it a consistent snapshot (the feed's head and the rows of one committed
state); the finished postings are then brought forward from the change feed in a second transaction and handed
over whole, so a reader never sees half an index. A build whose result the feed can no longer bring forward (a
bulk replay began meanwhile, or the feed was pruned past it) starts again.

It holds the GIL while it tokenizes: between chunks it yields, so requests interleave (most of its time is
SQLite reading and numpy sorting, which release it anyway). One build at a time; a failed one is logged once
and tried again after a growing delay, never in a loop.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from projectors.sqlite.lexical_postings import Postings, build, snapshot
from projectors.sqlite.second_reader import open_reader
from projectors.sqlite.unicode61 import Unicode61

__all__ = ["BackgroundBuild"]

log = logging.getLogger("ai_memory.readmodel")

#: Seconds before a failed build is tried again: doubled after each failure in a row, up to the maximum.
RETRY_FIRST = 1.0
RETRY_MAX = 300.0
#: How long close() waits for a build to notice it must stop (it checks between chunks: well under a second).
JOIN_TIMEOUT = 30.0


def between_chunks() -> None:
    """Called by the build thread after each chunk: let a waiting request thread take the GIL."""
    time.sleep(0)


class _Stopped(Exception):
    """close() was called: the build gives up between two chunks."""


class BackgroundBuild:
    """Builds :class:`Postings` of the read model at ``path`` on request, one build at a time, and hands each
    finished one, current as of its last transaction, to ``publish``."""

    def __init__(self, path: str, tokens: Unicode61, publish: Callable[[Postings], None]) -> None:
        self._path = path
        self._tokens = tokens
        self._publish = publish
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._retry_at = 0.0  # time.monotonic() before which no build starts (after a failure)
        self._delay = RETRY_FIRST
        self.failing = False  # the last build failed

    @property
    def building(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive()

    def request(self) -> None:
        """Start a build unless one is running, the last failed less than its delay ago, or we are closed."""
        with self._lock:
            if self._stop.is_set() or self.building or time.monotonic() < self._retry_at:
                return
            self._thread = threading.Thread(target=self._run, name="lexical-index-build", daemon=True)
            self._thread.start()

    def close(self) -> None:
        """Stop a build under way (at its next chunk) and wait for its thread."""
        with self._lock:
            self._stop.set()
            thread = self._thread
        if thread is not None:
            thread.join(JOIN_TIMEOUT)
            if thread.is_alive():
                log.warning("lexical index: the build thread did not stop within %.0f s", JOIN_TIMEOUT)

    def _run(self) -> None:
        t0 = time.perf_counter()
        log.info("lexical index: building in the background from %s", self._path)
        try:
            postings = self._built()
        except _Stopped:
            log.info("lexical index: build stopped (closing) after %.2f s", time.perf_counter() - t0)
            return
        except Exception as exc:  # any failure: FTS5 keeps answering, the next try waits
            self._failed(exc)
            return
        self.failing, self._delay, self._retry_at = False, RETRY_FIRST, 0.0
        if postings is None:
            log.info("lexical index: not built: a bulk replay is under way (FTS5 answers until it ends)")
            return
        log.info("lexical index: %d memories, %d terms, %.1f MiB, built in %.2f s", postings.rows, postings.terms,
                 postings.memory_bytes() / 2**20, time.perf_counter() - t0)
        self._publish(postings)

    def _built(self) -> Postings | None:
        """Postings current as of the feed's head when they are handed over, or None during a bulk replay."""
        db = open_reader(self._path)
        try:
            while True:
                with snapshot(db):
                    postings = build(db, self._tokens, self._between_chunks)
                if postings is None:
                    return None
                with snapshot(db):  # what was written during the build, so no request pays for it
                    if postings.follow(db):
                        return postings
                log.info("lexical index: the read model moved past the build (a bulk replay or a pruned "
                         "feed): building again")
        finally:
            db.close()

    def _between_chunks(self) -> None:
        if self._stop.is_set():
            raise _Stopped
        between_chunks()

    def _failed(self, exc: Exception) -> None:
        # Logged once per run of failures: a read model that cannot be read says so every few minutes at most.
        (log.debug if self.failing else log.warning)(
            "lexical index: build failed (%s: %s); FTS5 answers, trying again in %.0f s", type(exc).__name__, exc,
            self._delay)
        self.failing = True
        self._retry_at = time.monotonic() + self._delay
        self._delay = min(self._delay * 2, RETRY_MAX)
