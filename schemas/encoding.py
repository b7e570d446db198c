"""The canonical byte encoding of an event body: pure functions, no I/O.

The signature covers exactly these bytes, and the log carries them unchanged, so a consumer in any language
verifies the bytes it received and never has to re-encode anything. The encoding is JSON with:
keys sorted, no insignificant whitespace, UTF-8 with non-ASCII characters written as themselves, integral
floats written as integers, NaN and infinities refused.
"""

from __future__ import annotations

import json
import math
from typing import Any

from schemas.errors import EncodingError

__all__ = ["canonical_bytes", "decode_body", "normalize"]


def normalize(value: Any) -> Any:
    """Return ``value`` with integral floats as ints and tuples as lists; refuse non-finite numbers.

    Two producers that mean the same value then sign the same bytes (1.0 and 1 are one number in JSON).
    """
    if isinstance(value, float):
        if not math.isfinite(value):
            msg = f"non-finite number {value!r} cannot be encoded"
            raise EncodingError(msg)
        return int(value) if value.is_integer() and abs(value) < 2**53 else value
    if isinstance(value, dict):
        return {str(k): normalize(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [normalize(v) for v in value]
    return value


def canonical_bytes(value: Any) -> bytes:
    try:
        text = json.dumps(normalize(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                          allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise EncodingError(str(exc)) from None
    return text.encode("utf-8")


def decode_body(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        msg = f"event body is not JSON: {exc}"
        raise EncodingError(msg) from None
    if not isinstance(value, dict):
        raise EncodingError("event body is not a JSON object")
    return value
