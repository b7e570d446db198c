"""Ed25519 signatures of links over the original's canonical CBOR, so a link signed by either implementation
verifies in the other. Pure functions, no I/O.

The signed bytes are a CBOR map (RFC 8949) of six text keys, ``dst_id, observed_by, relation, src_id,
valid_from, valid_until``, each value a text string or ``null`` (absent values are null, never dropped), with
definite lengths and shortest-form heads (§4.2.1). The keys are emitted in the order the original's encoder
emits them: sorted as strings (its ``BTreeMap``), which is NOT §4.2.1's length-first order of the encoded
keys (that would put ``src_id`` before ``observed_by``); matching its bytes is what makes signatures portable.

Example::

    sig = sign_link(signing_key, SignableLink("src", "dst", "related_to", "alice", "2026-01-01T00:00:00Z"))
    assert verify_link(bytes(signing_key.verify_key), SignableLink(...same...), sig)
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey

from schemas.verify_keys import verify_key

__all__ = ["SignableLink", "canonical_cbor", "decode_signature", "encode_signature", "link_id", "parse_link_id",
           "sign_link", "verify_link"]

_NULL = b"\xf6"
_TEXT = 3  # CBOR major type 3: a UTF-8 text string
_MAP = 5   # CBOR major type 5: a map


@dataclass(frozen=True, slots=True)
class SignableLink:
    """The six fields a link signature commits to (the original's ``SignableLink``)."""

    src_id: str
    dst_id: str
    relation: str
    observed_by: str | None = None
    valid_from: str | None = None
    valid_until: str | None = None


def _head(major: int, length: int) -> bytes:
    """A CBOR item head with the shortest length encoding (RFC 8949 §4.2.1)."""
    if length < 24:
        return bytes([major << 5 | length])
    for extra, size in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if length < 1 << (8 * size):
            return bytes([major << 5 | extra]) + length.to_bytes(size, "big")
    msg = f"CBOR length {length} is too large"
    raise ValueError(msg)


def _text(value: str) -> bytes:
    raw = value.encode("utf-8")
    return _head(_TEXT, len(raw)) + raw


def canonical_cbor(link: SignableLink) -> bytes:
    """The bytes a link signature covers (see the module docstring for the layout)."""
    fields = {"dst_id": link.dst_id, "observed_by": link.observed_by, "relation": link.relation,
              "src_id": link.src_id, "valid_from": link.valid_from, "valid_until": link.valid_until}
    out = bytearray(_head(_MAP, len(fields)))
    for key in sorted(fields):
        value = fields[key]
        out += _text(key) + (_NULL if value is None else _text(value))
    return bytes(out)


def sign_link(key: SigningKey, link: SignableLink) -> bytes:
    """The 64-byte Ed25519 signature of ``link``'s canonical CBOR."""
    return bytes(key.sign(canonical_cbor(link)).signature)


def verify_link(public_key: bytes, link: SignableLink, signature: bytes) -> bool:
    """Whether ``signature`` is ``public_key``'s signature of ``link`` (any key source: a keys directory, a
    registered agent's key, a peer's)."""
    try:
        verify_key(public_key).verify(canonical_cbor(link), signature)
    except (BadSignatureError, ValueError):
        return False
    return True


def encode_signature(signature: bytes) -> str:
    """How a signature travels in events and JSON: standard base64."""
    return base64.b64encode(signature).decode("ascii")


def decode_signature(text: str) -> bytes | None:
    """The signature bytes, or None when ``text`` is not base64 of 64 bytes."""
    try:
        raw = base64.b64decode(text, validate=True)
    except ValueError:
        return None
    return raw if len(raw) == 64 else None


def link_id(source_id: str, relation: str, target_id: str) -> str:
    """The original's composite link id: ``src--relation-->dst``."""
    return f"{source_id}--{relation}-->{target_id}"


def parse_link_id(text: str) -> tuple[str, str, str] | None:
    """``(source_id, target_id, relation)`` of ``src--relation-->dst`` (split as the original does), or None."""
    left, sep, target = text.partition("-->")
    source, sep2, relation = left.partition("--")
    if not sep or not sep2 or not source or not target or not relation:
        return None
    return source, target, relation
