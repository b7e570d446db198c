"""The memory appliers of the Postgres read model: :mod:`projectors.memory_store` over a SQLAlchemy connection.

What is Postgres' own: the pgvector column holds vectors of the index's one dimension, written in its text form.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from sqlalchemy import Connection

from projectors import memory_store
from projectors.postgres.sql import PostgresSql
from projectors.rules import vector_bytes
from schemas.events import MemoryEmbedded

__all__ = ["APPLIERS", "vector_literal"]


def vector_literal(raw: bytes) -> str:
    """pgvector's text form of little-endian float32 bytes. Python's shortest repr of each float32 (as a double)
    parses back to the same float32, so the stored vector is bit-identical to the event's."""
    return "[" + ",".join(repr(x) for x in np.frombuffer(raw, dtype="<f4").tolist()) + "]"


def _vector(event: MemoryEmbedded) -> str:
    return vector_literal(vector_bytes(event))


APPLIERS: dict[str, Callable[[Connection, Any], None]] = memory_store.bind(PostgresSql, _vector)
