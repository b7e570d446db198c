"""The canonical byte encoding of an event body: pure functions, no I/O.

The signature covers exactly these bytes, and the log carries them unchanged, so a consumer in any language
verifies the bytes it received and never has to re-encode anything. The encoding is JSON with:
keys sorted, no insignificant whitespace, UTF-8 with non-ASCII characters written as themselves, integral
floats written as integers, NaN and infinities refused.
"""

from __future__ import annotations

import json
import math
from types import ModuleType
from typing import Any

from schemas.errors import EncodingError

_orjson: ModuleType | None
try:  # a dependency of the project, but not of the contract: consumers of schemas/ may go without it
    import orjson as _orjson
except ImportError:  # pragma: no cover - exercised by the faust example's venv
    _orjson = None

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


# orjson reads an integer beyond 64 bits as a float; a body with a run of 19 digits goes to the stdlib instead.
# Found by mapping digits to "1" and the rest to "0", then a plain substring search: ten times a regex's speed.
_DIGITS_AS_ONES = bytes(0x31 if 0x30 <= b <= 0x39 else 0x30 for b in range(256))
_LONG_RUN = b"1" * 19


def decode_body(body: bytes) -> dict[str, Any]:
    if _orjson is None or _LONG_RUN in body.translate(_DIGITS_AS_ONES):
        value = _stdlib_loads(body)
    else:
        try:
            value = _orjson.loads(body)
        except _orjson.JSONDecodeError:
            value = _stdlib_loads(body)
    if not isinstance(value, dict):
        raise EncodingError("event body is not a JSON object")
    return value


def _stdlib_loads(body: bytes) -> Any:
    """What orjson refused (big integers, lone surrogates, NaN): the stdlib decides, as it always did."""
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        msg = f"event body is not JSON: {exc}"
        raise EncodingError(msg) from None
