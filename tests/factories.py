"""Building blocks for tests: node keys and signed events made the way producers make them, and a log that
counts its reads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from infra.log import Clock, LogRecord
from infra.log.embedded import EmbeddedLog
from schemas import (
    SCHEMA_VERSION,
    Envelope,
    NodeKey,
    SignedEvent,
    load_or_create_node_key,
    new_event_id,
    now_ts,
    sign,
)


def node_key(tmp: Path, key_id: str = "test-node") -> NodeKey:
    return load_or_create_node_key(tmp / "keys", key_id)


def signed(key: NodeKey, *, event_type: str = "memory.deleted", payload: dict[str, Any] | None = None,
           namespace: str = "global", event_id: str | None = None) -> SignedEvent:
    envelope = Envelope(
        event_id=event_id or new_event_id(),
        type=event_type,
        schema_version=SCHEMA_VERSION,
        namespace=namespace,
        actor="tester",
        origin=key.key_id,
        ts=now_ts(),
        payload=payload if payload is not None else {"id": new_event_id()},
        key_id=key.key_id,
    )
    return sign(envelope, key)


class CountingLog(EmbeddedLog):
    """An embedded log that counts the reads made of it."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.reads = 0

    async def read(self, *, after: Clock | None = None, limit: int = 1000) -> list[LogRecord]:
        self.reads += 1
        return await super().read(after=after, limit=limit)
