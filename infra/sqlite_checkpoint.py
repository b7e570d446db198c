"""WAL checkpoints in a thread of their own, for the SQLite read model.

SQLite's automatic checkpoint runs inside the commit that crosses its threshold (1,000 pages): every ~25
recalls, a recall's touch (or a store) stalled ~10 ms copying the WAL into the database and syncing it. Here
the writer's threshold is raised to a safety net and a background connection runs passive checkpoints twice a
second, which never block readers or writers. Measured on 6,000 in-process stores: p95 1.61 → 1.29 ms, p99
5.7 → 2.4 ms. Not for the embedded log: there every append already syncs, and a checkpoint's sync beside it
made stores slower at the median (1.03 against 0.90 ms).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

__all__ = ["BackgroundCheckpointer"]

log = logging.getLogger("ai_memory.sqlite")

#: The writer's own automatic checkpoint stays as a safety net, at this many WAL pages (~80 MB of 4 KiB pages).
SAFETY_NET_PAGES = 20_000


class BackgroundCheckpointer:
    def __init__(self, path: Path | str, *, every: float = 0.5) -> None:
        self._path = str(path)
        self._every = every
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @staticmethod
    def relieve(writer: sqlite3.Connection) -> None:
        """Leave ``writer``'s commits without checkpoint work (but for the safety net)."""
        writer.execute(f"PRAGMA wal_autocheckpoint={SAFETY_NET_PAGES}")

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"checkpoint {Path(self._path).name}",
                                            daemon=True)
            self._thread.start()

    def _run(self) -> None:
        db = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False, timeout=0.1)
        try:
            while not self._stopping.wait(self._every):
                try:
                    db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                except sqlite3.Error as exc:  # busy or locked now: the next round will do it
                    log.debug("checkpoint of %s postponed: %s", self._path, exc)
        finally:
            db.close()

    def stop(self) -> None:
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stopping.set()
            thread.join()
