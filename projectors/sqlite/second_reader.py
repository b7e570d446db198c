"""A second read connection to the read model, with a thread of its own: one query can use both cores.

SQLite releases the GIL while it steps a statement, so a large keyword recall splits its matches by rowid and
ranks one half here while the caller's thread ranks the other. Only file databases have one (an in-memory
database is private to its connection). The two halves may read two snapshots if another process commits in
between; each half is consistent, and the next recall sees both.
"""

from __future__ import annotations

import sqlite3
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

__all__ = ["SecondReader", "main_file", "open_reader"]


def main_file(db: sqlite3.Connection) -> str:
    """The path of ``db``'s main database file; "" for an in-memory database (private to its connection)."""
    return next((str(row[2]) for row in db.execute("PRAGMA database_list") if row[1] == "main"), "")


def open_reader(path: str) -> sqlite3.Connection:
    """A read-only connection of its own to the read model at ``path`` (autocommit: reads choose their
    transactions)."""
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10.0)
    db.execute("PRAGMA query_only=ON")
    return db


class SecondReader:
    def __init__(self, path: str) -> None:
        self._path = path
        self._db: sqlite3.Connection | None = None
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="readmodel-second")

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:  # opened in the worker thread, on first use
            self._db = open_reader(self._path)
        return self._db

    def _fetch(self, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        return self._connection().execute(sql, params).fetchall()

    def fetch(self, sql: str, params: dict[str, Any]) -> Future[list[tuple[Any, ...]]]:
        """Run ``sql`` on the second connection in its thread; the rows come back in the future."""
        return self._pool.submit(self._fetch, sql, dict(params))

    def close(self) -> None:
        self._pool.submit(self._close).result()
        self._pool.shutdown()

    def _close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
