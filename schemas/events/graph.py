"""Knowledge-graph events: typed, time-bounded links between memories.

A link has no id of its own: ``(source_id, target_id, relation)`` names it (the original's key, shown as
``src--relation-->dst``). The signature, when there is one, is the observing agent's Ed25519 signature over the
original's deterministic-CBOR layout of the link, so links signed by either implementation verify in the other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

__all__ = ["AttestLevel", "EntityAliased", "Link", "LinkCreated", "LinkDeleted", "LinkInvalidated"]

OMIT_NONE = {"omit_none": True}

AttestLevel = Literal["unsigned", "self_signed", "peer_attested"]


@dataclass(frozen=True, slots=True)
class Link:
    source_id: str
    target_id: str
    relation: str
    created_at: str
    valid_from: str | None = None
    valid_until: str | None = None
    observed_by: str | None = None
    #: Base64 of the 64-byte Ed25519 signature over the link's canonical CBOR, when signed.
    signature: str | None = field(default=None, metadata=OMIT_NONE)
    attest_level: AttestLevel = "unsigned"


@dataclass(frozen=True, slots=True)
class LinkCreated:
    """A link between two memories. The same (source, target, relation) again replaces the earlier one."""

    TYPE: ClassVar[str] = "link.created"
    link: Link
    #: The writer's links/day quota when the link was metered: the projector refuses the link that would exceed
    #: it (the envelope's actor, counted in log order, so exact across nodes).
    max_per_day: int | None = field(default=None, metadata=OMIT_NONE)


@dataclass(frozen=True, slots=True)
class LinkInvalidated:
    """The link stops being valid at ``valid_until`` (it stays, for history and time-bounded queries)."""

    TYPE: ClassVar[str] = "link.invalidated"
    source_id: str
    target_id: str
    relation: str
    valid_until: str


@dataclass(frozen=True, slots=True)
class LinkDeleted:
    """The link is removed."""

    TYPE: ClassVar[str] = "link.deleted"
    source_id: str
    target_id: str
    relation: str


@dataclass(frozen=True, slots=True)
class EntityAliased:
    """Aliases for entity ``entity_id`` (a memory with ``metadata.kind == "entity"``), registered at
    ``created_at``. An alias the entity already has is kept as it was (registration is idempotent)."""

    TYPE: ClassVar[str] = "entity.aliased"
    entity_id: str
    aliases: list[str]
    created_at: str
