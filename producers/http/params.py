"""Parsing helpers the HTTP route modules share: a JSON object body, a boolean query flag, an agent id named in
a request. Each keeps the exact error text its routes have always answered with (wire compatibility)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from producers.errors import ValidationError
from producers.input.validation import check_agent_id

__all__ = ["NOT_AN_OBJECT", "json_object", "named_agent", "query_flag"]

NOT_AN_OBJECT = "the request body must be a JSON object"


def json_object(body: Any, *, empty_ok: bool = False, error: str = NOT_AN_OBJECT) -> dict[str, Any]:
    """``body`` when it is a JSON object; an empty body is ``{}`` where ``empty_ok``, else refused with ``error``."""
    if body is None and empty_ok:
        return {}
    if not isinstance(body, dict):
        raise ValidationError(error)
    return body


def query_flag(params: Mapping[str, str], name: str) -> bool:
    """A ``?name=true`` flag as the original reads it: only ``true`` (any case) is true, absent is false."""
    return params.get(name, "false").lower() == "true"


def named_agent(value: Any) -> str:
    """An agent id a request names (header or body), checked; refused as ``invalid agent_id: …``."""
    try:
        return check_agent_id(value)
    except ValidationError as exc:
        raise ValidationError(f"invalid agent_id: {exc}") from None
