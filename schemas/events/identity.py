"""Identity and visibility events: agent keys (attested agent identity) and namespaces where ``as_agent`` is
mandatory. Payloads carry the producer's decision and timestamps; projectors only apply them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

__all__ = ["AgentKeyRegistered", "AgentKeyRevoked", "AsAgentRequirementSet"]


@dataclass(frozen=True, slots=True)
class AgentKeyRegistered:
    """An agent's Ed25519 public key. From now on requests claiming ``agent_id`` must be signed with it.

    ``proof`` is the key's signature over the registration (``schemas.request_signing.registration_message``
    of ``agent_id``, ``public_key`` and ``proof_timestamp``), so anyone can check the registrant held the key.
    A later registration for the same agent replaces the key (rotation).
    """

    TYPE: ClassVar[str] = "identity.key_registered"
    agent_id: str
    key_id: str
    #: URL-safe base64 (no padding) of the 32-byte public key.
    public_key: str
    proof: str
    proof_timestamp: int
    registered_at: str


@dataclass(frozen=True, slots=True)
class AgentKeyRevoked:
    """The agent's key is withdrawn (operator action); its requests are unsigned again."""

    TYPE: ClassVar[str] = "identity.key_revoked"
    agent_id: str
    key_id: str
    revoked_at: str
    reason: str = ""


@dataclass(frozen=True, slots=True)
class AsAgentRequirementSet:
    """An operator made ``as_agent`` mandatory (``required``) for reads in ``prefix`` and every namespace below
    it, or lifted that requirement (``required`` false)."""

    TYPE: ClassVar[str] = "identity.as_agent_required"
    prefix: str
    required: bool
    set_at: str
    reason: str = ""
