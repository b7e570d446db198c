"""The SQLite read model (memories + FTS5)."""

from __future__ import annotations

from projectors.sqlite.queries import SQLiteMemoryQueries
from projectors.sqlite.store import SQLiteReadModel

__all__ = ["SQLiteMemoryQueries", "SQLiteReadModel"]
