"""The memory appliers of the SQLite read model: :mod:`projectors.memory_store` over a SQLite connection.

What is SQLite's own: vectors of any model's dimension are kept (readers ask for their own model's), as the
float32 bytes of the event.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

from projectors import memory_store
from projectors.rules import WRONG_DIMENSION, Inapplicable, tier_max, vector_bytes
from projectors.sqlite.sql import SQLiteSql
from schemas.events import MemoryEmbedded

# Re-exported: the decisions live in projectors.rules, shared with the Postgres backend.
__all__ = ["APPLIERS", "WRONG_DIMENSION", "Inapplicable", "tier_max", "vector_bytes"]


def _vector(event: MemoryEmbedded) -> bytes:
    return vector_bytes(event, dim=None)


APPLIERS: dict[str, Callable[[sqlite3.Connection, Any], None]] = memory_store.bind(SQLiteSql, _vector)
