"""TOON (token-oriented object notation): the original's compact text for memory lists, byte for byte.

One metadata line (``count:N|mode:M|tokens_used:T[|budget_tokens:B]``), an optional ``standards[id|title|content]:``
block, then a ``memories[<fields>]:`` header and one pipe-delimited row per memory. Pure functions, no I/O.

    >>> memories_to_toon({"count": 1, "memories": [{"id": "a", "title": "x|y", "tags": ["t", "u"]}]}, compact=True)
    'count:1\\nmemories[id|title|tier|namespace|priority|score|tags|agent_id]:\\na|x\\\\|y|||||t,u|\\n'
"""

from __future__ import annotations

import json
import math
from typing import Any

__all__ = ["FIELDS", "FIELDS_COMPACT", "memories_to_toon", "search_to_toon"]

FIELDS: tuple[str, ...] = ("id", "title", "tier", "namespace", "priority", "confidence", "score", "access_count",
                           "tags", "source", "created_at", "updated_at", "metadata")
# Compact drops timestamps and pulls agent_id out of metadata, so provenance stays visible in the default format.
FIELDS_COMPACT: tuple[str, ...] = ("id", "title", "tier", "namespace", "priority", "score", "tags", "agent_id")
_ESCAPES = (("\\", "\\\\"), ("|", "\\|"), (":", "\\:"), ("\n", "\\n"), ("\r", "\\r"))


def _escape(text: str) -> str:
    for raw, escaped in _ESCAPES:
        text = text.replace(raw, escaped)
    return text


def number(value: int | float) -> str:
    """A JSON number as serde_json prints it: integers bare, floats always with a fraction or exponent."""
    if isinstance(value, int):  # bool is an int too
        return str(int(value))
    if not math.isfinite(value):
        return "null"
    text = repr(float(value))
    if "e" in text:
        mantissa, exponent = text.split("e")
        return f"{mantissa}e{int(exponent)}"
    return text


def _value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | float):
        return number(value)
    if isinstance(value, str):
        return _escape(value)
    if isinstance(value, list):
        return _escape(",".join(v for v in value if isinstance(v, str)))
    if isinstance(value, dict):
        return _escape(json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)) if value else ""
    return _escape(str(value))


def _json_scalar(value: Any) -> str:
    """How the meta line prints a value: JSON text (so a string keeps its quotes, as in the original)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return number(value)
    return json.dumps(value, ensure_ascii=False)


def _meta_line(response: dict[str, Any]) -> str | None:
    parts = []
    if "count" in response:
        parts.append(f"count:{_json_scalar(response['count'])}")
    if isinstance(response.get("mode"), str):
        parts.append(f"mode:{response['mode']}")
    for key in ("tokens_used", "budget_tokens"):
        if key in response:
            parts.append(f"{key}:{_json_scalar(response[key])}")
    return "|".join(parts) if parts else None


def _standards(response: dict[str, Any]) -> list[str]:
    found: list[Any] = []
    if "standard" in response:
        found.append(response["standard"])
    if isinstance(response.get("standards"), list):
        found.extend(response["standards"])
    if not found:
        return []
    rows = [f"{_value(s.get('id'))}|{_value(s.get('title'))}|{_value(s.get('content'))}"
            for s in found if isinstance(s, dict)]
    return ["standards[id|title|content]:", *rows]


def _row(memory: dict[str, Any], fields: tuple[str, ...]) -> str:
    metadata = memory.get("metadata")
    cells = [_value(metadata.get("agent_id") if isinstance(metadata, dict) else None) if name == "agent_id"
             else _value(memory.get(name)) for name in fields]
    return "|".join(cells)


def memories_to_toon(response: dict[str, Any], *, compact: bool) -> str:
    """TOON for a response holding ``memories`` (recall, list, session_start)."""
    fields = FIELDS_COMPACT if compact else FIELDS
    lines: list[str] = []
    meta = _meta_line(response)
    if meta is not None:
        lines.append(meta)
    lines.extend(_standards(response))
    lines.append(f"memories[{'|'.join(fields)}]:")
    memories = response.get("memories")
    if isinstance(memories, list):
        lines.extend(_row(m, fields) for m in memories if isinstance(m, dict))
    return "\n".join(lines) + "\n"


def search_to_toon(response: dict[str, Any], *, compact: bool) -> str:
    """Search answers under ``results``; TOON shows them as ``memories`` all the same."""
    if "results" in response and "memories" not in response:
        response = {**response, "memories": response["results"]}
    return memories_to_toon(response, compact=compact)
