"""The contract: event envelope, canonical encoding, signing, event types and their JSON Schemas.

Pure Python and JSON; imports nothing else of ours. Example::

    from schemas import Envelope, Keyring, sign, verify, load_or_create_node_key
"""

from __future__ import annotations

from schemas.chain import ChainAudit, ChainBreak, ChainLink, event_hash
from schemas.clock import canonical_ts, format_ts, now_ts, parse_ts, shift_ts
from schemas.encoding import canonical_bytes, decode_body
from schemas.envelope import Envelope, SignedEvent, new_event_id
from schemas.errors import EncodingError, PayloadError, SchemaError, SignatureError, UnknownEventTypeError
from schemas.events import EVENT_TYPES, SCHEMA_VERSION, decode_payload, encode_payload
from schemas.link_signing import (
    SignableLink,
    canonical_cbor,
    decode_signature,
    encode_signature,
    link_id,
    parse_link_id,
    sign_link,
    verify_link,
)
from schemas.memory import SCOPES, TIERS, Memory
from schemas.signing import Keyring, NodeKey, load_or_create_node_key, sign, verify
from schemas.vectors import VECTOR_DIM, decode_vector, encode_vector

__all__ = [
    "EVENT_TYPES",
    "SCHEMA_VERSION",
    "SCOPES",
    "TIERS",
    "VECTOR_DIM",
    "ChainAudit",
    "ChainBreak",
    "ChainLink",
    "EncodingError",
    "Envelope",
    "Keyring",
    "Memory",
    "NodeKey",
    "PayloadError",
    "SchemaError",
    "SignableLink",
    "SignatureError",
    "SignedEvent",
    "UnknownEventTypeError",
    "canonical_bytes",
    "canonical_cbor",
    "canonical_ts",
    "decode_body",
    "decode_payload",
    "decode_signature",
    "decode_vector",
    "encode_payload",
    "encode_signature",
    "encode_vector",
    "event_hash",
    "format_ts",
    "link_id",
    "load_or_create_node_key",
    "new_event_id",
    "now_ts",
    "parse_link_id",
    "parse_ts",
    "shift_ts",
    "sign",
    "sign_link",
    "verify",
    "verify_link",
]
