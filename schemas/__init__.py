"""The contract: event envelope, canonical encoding, signing, event types and their JSON Schemas.

Pure Python and JSON; imports nothing else of ours. Example::

    from schemas import Envelope, Keyring, sign, verify, load_or_create_node_key
"""

from __future__ import annotations

from schemas.clock import format_ts, now_ts, parse_ts, shift_ts
from schemas.encoding import canonical_bytes, decode_body
from schemas.envelope import Envelope, SignedEvent, new_event_id
from schemas.errors import EncodingError, PayloadError, SchemaError, SignatureError, UnknownEventTypeError
from schemas.events import EVENT_TYPES, SCHEMA_VERSION, decode_payload, encode_payload
from schemas.memory import SCOPES, TIERS, Memory
from schemas.signing import Keyring, NodeKey, load_or_create_node_key, sign, verify
from schemas.vectors import VECTOR_DIM, decode_vector, encode_vector

__all__ = [
    "EVENT_TYPES",
    "SCHEMA_VERSION",
    "SCOPES",
    "TIERS",
    "VECTOR_DIM",
    "EncodingError",
    "Envelope",
    "Keyring",
    "Memory",
    "NodeKey",
    "PayloadError",
    "SchemaError",
    "SignatureError",
    "SignedEvent",
    "UnknownEventTypeError",
    "canonical_bytes",
    "decode_body",
    "decode_payload",
    "decode_vector",
    "encode_payload",
    "encode_vector",
    "format_ts",
    "load_or_create_node_key",
    "new_event_id",
    "now_ts",
    "parse_ts",
    "shift_ts",
    "sign",
    "verify",
]
