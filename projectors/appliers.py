"""How a read model's appliers are gathered from its domains, the same on every backend.

Memory events need only their payload; every other domain's applier gets ``(db, payload, record)``, the record
giving the envelope (actor, ts, origin) and the log offset. When two domains follow one event type (the graph
follows memory deletions, quotas count stores), their appliers run in domain order, in the same transaction;
either one refusing the event refuses it whole.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from infra.log import LogRecord
from projectors.sql import Sql

__all__ = ["Applier", "SqlApplier", "gather", "over_sql"]

DB = TypeVar("DB")
#: ``apply(db, payload, record)``.
Applier = Callable[[DB, Any, LogRecord], None]
#: A domain applier written once for both backends: ``apply(sql, payload, record)``.
SqlApplier = Callable[[Sql, Any, LogRecord], None]


def over_sql(appliers: Mapping[str, SqlApplier], adapter: Callable[[DB], Sql]) -> dict[str, Applier[DB]]:
    """A backend's appliers from shared ones: each call wraps the backend's connection in its :class:`Sql`."""

    def bound(fn: SqlApplier) -> Applier[DB]:
        return lambda db, payload, record: fn(adapter(db), payload, record)

    return {event_type: bound(fn) for event_type, fn in appliers.items()}


def _payload_only(fn: Callable[[DB, Any], None]) -> Applier[DB]:
    return lambda db, payload, _record: fn(db, payload)


def _chained(first: Applier[DB], then: Applier[DB]) -> Applier[DB]:
    def both(db: DB, payload: Any, record: LogRecord) -> None:
        first(db, payload, record)
        then(db, payload, record)

    return both


def gather(memory_appliers: Mapping[str, Callable[[DB, Any], None]],
           domains: Iterable[Mapping[str, Applier[DB]]]) -> dict[str, Applier[DB]]:
    """Event type → applier: the memory domain's first, then each domain's, chained where types repeat."""
    out: dict[str, Applier[DB]] = {t: _payload_only(fn) for t, fn in memory_appliers.items()}
    for appliers in domains:
        for event_type, applier in appliers.items():
            out[event_type] = _chained(out[event_type], applier) if event_type in out else applier
    return out
