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
from projectors.postgres import archive, governance, graph, identity, subscriptions

__all__ = ["APPLIERS", "Applier"]

#: ``apply(db, payload, record)``: the record gives the envelope (actor, ts, origin) and the log offset.
Applier = Callable[[Connection, Any, LogRecord], None]

_DOMAINS: tuple[ModuleType, ...] = (subscriptions, archive, governance, graph, identity)


def _memory_applier(fn: Callable[[Connection, Any], None]) -> Applier:
    """Memory events need only their payload."""
    return lambda conn, payload, _record: fn(conn, payload)


def _chained(first: Applier, then: Applier) -> Applier:
    """Two domains following one event type (the graph follows memory deletions, quotas count stores): the
    earlier domain applies first, in the same transaction; either one refusing the event refuses it whole."""

    def both(db: Connection, payload: Any, record: LogRecord) -> None:
        first(db, payload, record)
        then(db, payload, record)

    return both


APPLIERS: dict[str, Applier] = {t: _memory_applier(fn) for t, fn in memories.APPLIERS.items()}


for _domain in _DOMAINS:
    _appliers: Mapping[str, Applier] = _domain.APPLIERS
    for _type, _applier in _appliers.items():
        APPLIERS[_type] = _chained(APPLIERS[_type], _applier) if _type in APPLIERS else _applier
