"""Errors raised by the contract layer.

    SchemaError
    ├── EncodingError        bytes that are not a canonical event body
    ├── UnknownEventTypeError an event type this version does not know
    ├── PayloadError         a payload that does not match its event type
    └── SignatureError       a signature that does not verify, or an unknown signer key
"""

from __future__ import annotations

__all__ = ["EncodingError", "PayloadError", "SchemaError", "SignatureError", "UnknownEventTypeError"]


class SchemaError(Exception):
    """Base of every contract-layer error."""


class EncodingError(SchemaError):
    """The bytes are not a valid canonical event body."""


class UnknownEventTypeError(SchemaError):
    def __init__(self, event_type: str) -> None:
        self.event_type = event_type
        super().__init__(f"unknown event type {event_type!r}")


class PayloadError(SchemaError):
    def __init__(self, event_type: str, reason: str) -> None:
        self.event_type = event_type
        self.reason = reason
        super().__init__(f"invalid payload for {event_type}: {reason}")


class SignatureError(SchemaError):
    def __init__(self, event_id: str, key_id: str, reason: str) -> None:
        self.event_id = event_id
        self.key_id = key_id
        self.reason = reason
        super().__init__(f"event {event_id} (key {key_id!r}): {reason}")
