"""The memory record as it travels in events and over the HTTP API (the original's 15 fields)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

__all__ = ["SCOPES", "TIERS", "Memory", "Tier"]

Tier = Literal["short", "mid", "long"]
TIERS: tuple[str, ...] = ("short", "mid", "long")
SCOPES: tuple[str, ...] = ("private", "team", "unit", "org", "collective")


@dataclass(frozen=True, slots=True)
class Memory:
    id: str
    tier: Tier
    namespace: str
    title: str
    content: str
    tags: list[str]
    priority: int
    confidence: float
    source: str
    access_count: int
    created_at: str
    updated_at: str
    last_accessed_at: str | None = None
    expires_at: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_payload(self) -> dict[str, Any]:
        """Every field, nulls included: events say exactly what the state is."""
        return asdict(self)

    def to_api(self) -> dict[str, Any]:
        """The HTTP/MCP shape: like the original, null timestamps are left out."""
        data = asdict(self)
        for name in ("last_accessed_at", "expires_at"):
            if data[name] is None:
                del data[name]
        # Who vouched for the latest write: the projector keeps it in metadata only when a signature did.
        level = self.metadata.get("attest_level")
        data["attest_level"] = level if level in ("self_signed", "peer_attested") else "unsigned"
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Memory:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})
