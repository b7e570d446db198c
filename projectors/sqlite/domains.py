"""Every event applier of the SQLite read model, and the tables beyond memories, by domain.

A domain (links, governance, agents, …) is one module with ``DDL`` (its tables, ``CREATE … IF NOT EXISTS``)
and ``APPLIERS`` (event type → ``apply(db, payload, record)``); adding one means adding it to
:data:`_DOMAINS` and bumping :data:`projectors.sqlite.schema.SCHEMA_VERSION`. All domains share one database
and one tracked position, so an event and everything it changes commit together.
"""

from __future__ import annotations

import sqlite3
from types import ModuleType

from projectors.appliers import Applier as AnyApplier
from projectors.appliers import gather
from projectors.sqlite import apply as memories
from projectors.sqlite import archive, governance, graph, identity, merge, subscriptions

__all__ = ["APPLIERS", "DOMAIN_DDL", "MEMORY_APPLIERS", "Applier"]

Applier = AnyApplier[sqlite3.Connection]

# The graph before governance: a link the graph refuses (an end deleted first, in log order) is refused
# before governance charges it to its agent's links/day quota (appliers write as they go, no savepoint).
_DOMAINS: tuple[ModuleType, ...] = (subscriptions, archive, graph, governance, identity, merge)

APPLIERS: dict[str, Applier] = gather(memories.APPLIERS, [domain.APPLIERS for domain in _DOMAINS])
DOMAIN_DDL: list[str] = [domain.DDL for domain in _DOMAINS]
#: The memory domain alone: what a late memory event's replay applies again (the other domains keep arrival order).
MEMORY_APPLIERS = memories.APPLIERS
