"""What the identity read model answers (agent keys, namespaces where ``as_agent`` is mandatory, scope-aware
counts), and the decisions both backends share so they cannot drift: a memory's ``attest_level`` and whether
a namespace lies under a prefix.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

from schemas.request_signing import Attestation, b64url_decode

__all__ = ["ATTEST_KEY", "AgentKey", "IdentityQueries", "ScopeCount", "attest_level"]

#: Where a memory's attest level lives: its metadata, set by the projector on every write of the memory (so a
#: client cannot forge it) and left out when the write was unsigned.
ATTEST_KEY = "attest_level"


@dataclass(frozen=True, slots=True)
class AgentKey:
    agent_id: str
    key_id: str
    public_key: str  # URL-safe base64 of the 32 raw bytes
    registered_at: str

    @property
    def raw(self) -> bytes:
        return b64url_decode(self.public_key)

    def to_api(self) -> dict[str, Any]:
        return {"agent_id": self.agent_id, "key_id": self.key_id, "public_key": self.public_key,
                "registered_at": self.registered_at}


@dataclass(frozen=True, slots=True)
class ScopeCount:
    namespace: str
    scope: str
    count: int
    #: The author of these private memories (None for the other scopes, which are counted whoever wrote them).
    owner: str | None = None


#: What :meth:`IdentityQueries.scope_counts` selects and groups by on every backend: private memories by author.
SCOPE_COUNT_SQL = "namespace, scope, count(*) AS n, CASE WHEN scope = 'private' THEN agent_id END AS owner"
SCOPE_GROUPS_SQL = "GROUP BY namespace, scope, owner ORDER BY namespace, scope, owner"


def attest_level(attestation: dict[str, Any] | None, author: str | None, key: AgentKey | None) -> str | None:
    """The attest level a write gives its memory: ``self_signed`` when the memory's author signed the request,
    ``peer_attested`` when another keyed agent did, None (unsigned) when there is no signature that verifies
    against the signer's key as registered at that point in the log."""
    if attestation is None or key is None:
        return None
    att = Attestation.from_dict(attestation)
    if att is None or att.agent_id != key.agent_id or att.key_id != key.key_id:
        return None
    try:
        if not att.verify(key.raw):
            return None
    except ValueError:
        return None
    return "self_signed" if att.agent_id == author else "peer_attested"


def attested_metadata(metadata: dict[str, Any], attestation: dict[str, Any] | None,
                      signer: AgentKey | None) -> dict[str, Any] | None:
    """The memory's metadata with the write's attest level recorded (or a stale one cleared), or None when it
    is already right: both read models make this decision here and only write the result."""
    level = attest_level(attestation, metadata.get("agent_id"), signer)
    if metadata.get(ATTEST_KEY) == level:
        return None
    updated = {k: v for k, v in metadata.items() if k != ATTEST_KEY}
    if level is not None:
        updated[ATTEST_KEY] = level
    return updated


class IdentityQueries(ABC):
    @abstractmethod
    def agent_key(self, agent_id: str) -> AgentKey | None:
        """The agent's current key, or None when it has none (never registered, or revoked)."""

    @abstractmethod
    def agent_keys(self) -> list[AgentKey]:
        """Every current key, by agent id."""

    @abstractmethod
    def required_prefixes(self) -> list[str]:
        """Namespace prefixes where reads must name ``as_agent``, sorted."""

    @abstractmethod
    def scope_counts(self, now: str) -> list[ScopeCount]:
        """Live (unexpired at ``now``) memories counted by namespace and scope (what taxonomy filters)."""
