"""Every event applier of the Postgres read model, by domain (the same domains as the SQLite backend).

A domain module has ``APPLIERS`` (event type → ``apply(conn, payload, record)``); its tables come from an
Alembic revision in ``migrations/versions``. Adding a domain means adding it to :data:`_DOMAINS`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any

from sqlalchemy import Connection

from infra.log import LogRecord
from projectors.postgres import apply as memories
from projectors.postgres import archive, subscriptions

__all__ = ["APPLIERS", "Applier"]

#: ``apply(db, payload, record)``: the record gives the envelope (actor, ts, origin) and the log offset.
Applier = Callable[[Connection, Any, LogRecord], None]

_DOMAINS: tuple[ModuleType, ...] = (subscriptions, archive)


def _memory_applier(fn: Callable[[Connection, Any], None]) -> Applier:
    """Memory events need only their payload."""
    return lambda conn, payload, _record: fn(conn, payload)


APPLIERS: dict[str, Applier] = {t: _memory_applier(fn) for t, fn in memories.APPLIERS.items()}
for _domain in _DOMAINS:
    _appliers: Mapping[str, Applier] = _domain.APPLIERS
    APPLIERS.update(_appliers)
