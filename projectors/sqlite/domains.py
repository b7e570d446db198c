"""Every event applier of the SQLite read model, and the tables beyond memories, by domain.

A domain (links, governance, agents, …) is one module with ``DDL`` (its tables, ``CREATE … IF NOT EXISTS``)
and ``APPLIERS`` (event type → ``apply(db, payload, record)``); adding one means adding it to
:data:`_DOMAINS` and bumping :data:`projectors.sqlite.schema.SCHEMA_VERSION`. All domains share one database
and one tracked position, so an event and everything it changes commit together.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any

from infra.log import LogRecord
from projectors.sqlite import apply as memories
from projectors.sqlite import archive, governance, graph, identity, subscriptions

__all__ = ["APPLIERS", "DOMAIN_DDL", "Applier"]

#: ``apply(db, payload, record)``: the record gives the envelope (actor, ts, origin) and the log offset.
Applier = Callable[[sqlite3.Connection, Any, LogRecord], None]

_DOMAINS: tuple[ModuleType, ...] = (subscriptions, archive, governance, graph, identity)


def _memory_applier(fn: Callable[[sqlite3.Connection, Any], None]) -> Applier:
    """Memory events need only their payload."""
    return lambda db, payload, _record: fn(db, payload)


def _chained(first: Applier, then: Applier) -> Applier:
    """Two domains following one event type (the graph follows memory deletions, quotas count stores): the
    earlier domain applies first, in the same transaction; either one refusing the event refuses it whole."""

    def both(db: sqlite3.Connection, payload: Any, record: LogRecord) -> None:
        first(db, payload, record)
        then(db, payload, record)

    return both


APPLIERS: dict[str, Applier] = {t: _memory_applier(fn) for t, fn in memories.APPLIERS.items()}
DOMAIN_DDL: list[str] = []


for _domain in _DOMAINS:
    _appliers: Mapping[str, Applier] = _domain.APPLIERS
    for _type, _applier in _appliers.items():
        APPLIERS[_type] = _chained(APPLIERS[_type], _applier) if _type in APPLIERS else _applier
    DOMAIN_DDL.append(_domain.DDL)
