"""Every event applier of the Postgres read model, by domain (the same domains as the SQLite backend).

A domain module has ``APPLIERS`` (event type → ``apply(conn, payload, record)``); its tables come from an
Alembic revision in ``migrations/versions``. Adding a domain means adding it to :data:`_DOMAINS`.
"""

from __future__ import annotations

from types import ModuleType

from sqlalchemy import Connection

from projectors.appliers import Applier as AnyApplier
from projectors.appliers import gather
from projectors.postgres import apply as memories
from projectors.postgres import archive, governance, graph, identity, subscriptions

__all__ = ["APPLIERS", "MEMORY_APPLIERS", "Applier"]

Applier = AnyApplier[Connection]

# The graph before governance: a link the graph refuses (an end deleted first, in log order) is refused
# before governance charges it to its agent's links/day quota (appliers write as they go, no savepoint).
_DOMAINS: tuple[ModuleType, ...] = (subscriptions, archive, graph, governance, identity)

APPLIERS: dict[str, Applier] = gather(memories.APPLIERS, [domain.APPLIERS for domain in _DOMAINS])
#: The memory domain alone: what a late memory event's replay applies again (the other domains keep arrival order).
MEMORY_APPLIERS = memories.APPLIERS
