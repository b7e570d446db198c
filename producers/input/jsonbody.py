"""Strict JSON for what callers send: the one parser of request bodies (HTTP) and the one check of tool
arguments (MCP), so hostile input becomes a :class:`ValidationError` (400) before any validator sees it.

Refused, each with its own message:

- nesting deeper than :data:`MAX_JSON_DEPTH` (deep enough for the deepest legitimate body: an import whose
  memories carry metadata nested 32 levels); the stdlib parser itself recurses, so a RecursionError from
  it is the same refusal;
- ``NaN``, ``Infinity`` and numbers too large for a double (``1e400``): not JSON (RFC 8259), and nothing
  downstream can store or compare them;
- lone UTF-16 surrogates (``"\\ud800"``): legal as a JSON escape, but not Unicode; they cannot be encoded to
  UTF-8, so they would fail later in a tokenizer, the log's encoder or the response;
- NUL (``"\\u0000"``) in any string: Postgres cannot store it (a stored event carrying one would stop a
  Postgres projector for good) and SQLite's FTS ends a query string at it.

>>> parse_json_body(b'{"a": [1, 2.5, "x"]}')
{'a': [1, 2.5, 'x']}
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from producers.errors import ValidationError

__all__ = ["MAX_JSON_DEPTH", "check_json_value", "parse_json_body"]

MAX_JSON_DEPTH = 64
_SURROGATE = re.compile("[\ud800-\udfff]")


def _refuse_constant(name: str) -> Any:
    raise ValidationError(f"invalid JSON number {name}: NaN and Infinity are not JSON")


def parse_json_body(raw: bytes | str) -> Any:
    """``raw`` parsed as strict JSON and checked by :func:`check_json_value`. Raises ValidationError."""
    try:
        # A parse_float hook would refuse 1e400 here, but it makes the C scanner 3x slower: the walk refuses
        # the infinite float instead.
        value = json.loads(raw, parse_constant=_refuse_constant)
    except RecursionError:
        raise ValidationError(f"JSON nesting depth exceeds limit of {MAX_JSON_DEPTH}") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, and int()'s 4,300-digit limit
        raise ValidationError(f"Failed to parse the request body as JSON: {exc}") from None
    return check_json_value(value)


def check_json_value(value: Any) -> Any:
    """``value`` itself when its nesting depth is at most MAX_JSON_DEPTH and no string (key or value) holds a
    lone surrogate or a NUL, and no number is infinite or NaN (``1e400`` parses as infinity; MCP arguments
    arrive already parsed, where the SDK accepts NaN). Iterative, so the check cannot itself overflow the stack."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            _check_text(item)
        elif isinstance(item, float) and not math.isfinite(item):
            raise ValidationError("JSON numbers must be finite (NaN, Infinity and 1e400 are not)")
        elif isinstance(item, dict | list):
            if depth > MAX_JSON_DEPTH:
                raise ValidationError(f"JSON nesting depth exceeds limit of {MAX_JSON_DEPTH}")
            children = item.items() if isinstance(item, dict) else enumerate(item)
            for key, child in children:
                if isinstance(key, str):
                    _check_text(key)
                stack.append((child, depth + 1))
    return value


def _check_text(text: str) -> None:
    if "\x00" in text:
        raise ValidationError("invalid string: NUL (U+0000) is not allowed")
    if not text.isascii() and _SURROGATE.search(text):
        raise ValidationError("invalid string: lone UTF-16 surrogates are not Unicode text")
