"""The event envelope and its signed form.

An :class:`Envelope` is what happened; a :class:`SignedEvent` is an envelope together with the exact canonical
bytes that were signed (``body``) and the Ed25519 signature over them. Logs store and carry signed events
as ``(body, signature)`` pairs, never re-encoding the body.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from schemas.chain import ChainLink
from schemas.encoding import canonical_bytes, decode_body
from schemas.errors import EncodingError

__all__ = ["ENVELOPE_FIELDS", "OPTIONAL_FIELDS", "Envelope", "SignedEvent", "new_event_id"]

ENVELOPE_FIELDS = ("event_id", "type", "schema_version", "namespace", "actor", "origin", "ts", "payload",
                   "key_id")
#: Fields an envelope carries only when set. Absent, they are absent from the canonical bytes too, so every
#: event written before they existed keeps exactly its bytes (and its signature).
OPTIONAL_FIELDS = ("attestation", "chain", "cause")


def new_event_id() -> str:
    return str(uuid.uuid4())


@dataclass(frozen=True, slots=True)
class Envelope:
    """One state change. ``event_id`` is the dedup key: a log stores an event id once."""

    event_id: str
    type: str
    schema_version: int
    namespace: str
    actor: str
    origin: str
    ts: str
    payload: dict[str, Any]
    key_id: str
    #: The calling agent's own signature over the request that caused this event (see
    #: ``schemas.request_signing``), beside the node's signature over the whole envelope; None when unsigned.
    attestation: dict[str, Any] | None = None
    #: The writer's hash chain (see ``schemas.chain``): epoch, seq, hash of the previous event; None on events
    #: written before chains existed.
    chain: dict[str, Any] | None = None
    #: The event id of the decision this event carries out (an approval's action): the projectors apply it
    #: only when that decision was applied before it in log order, so a decision that lost a race runs nothing.
    cause: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {name: getattr(self, name) for name in ENVELOPE_FIELDS}
        if self.attestation is not None:
            out["attestation"] = self.attestation
        if self.chain is not None:
            out["chain"] = self.chain
        if self.cause is not None:
            out["cause"] = self.cause
        return out

    def body(self) -> bytes:
        """The canonical bytes a signature covers."""
        return canonical_bytes(self.to_dict())

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Envelope:
        missing = [name for name in ENVELOPE_FIELDS if name not in data]
        if missing:
            msg = f"envelope is missing {', '.join(missing)}"
            raise EncodingError(msg)
        extra = sorted(set(data) - set(ENVELOPE_FIELDS) - set(OPTIONAL_FIELDS))
        if extra:
            msg = f"envelope has unknown fields {', '.join(extra)}"
            raise EncodingError(msg)
        if not isinstance(data["payload"], dict):
            raise EncodingError("envelope payload is not an object")
        if "attestation" in data and not isinstance(data["attestation"], dict):
            raise EncodingError("envelope attestation is not an object")
        if "chain" in data:
            ChainLink.from_dict(data["chain"])
        if "cause" in data and not isinstance(data["cause"], str):
            raise EncodingError("envelope cause is not an event id")
        if not isinstance(data["schema_version"], int):
            raise EncodingError("envelope schema_version is not an integer")
        for name in ("event_id", "type", "namespace", "actor", "origin", "ts", "key_id"):
            if not isinstance(data[name], str):
                msg = f"envelope {name} is not a string"
                raise EncodingError(msg)
        return cls(**data)


@dataclass(frozen=True, slots=True)
class SignedEvent:
    """An envelope with the exact bytes that were signed and the signature over them."""

    body: bytes
    signature: bytes
    envelope: Envelope = field(compare=False)

    @property
    def event_id(self) -> str:
        return self.envelope.event_id

    @classmethod
    def from_parts(cls, body: bytes, signature: bytes) -> SignedEvent:
        """Rebuild a signed event from what a log stored. Does not verify the signature."""
        return cls(body=bytes(body), signature=bytes(signature),
                   envelope=Envelope.from_dict(decode_body(body)))
