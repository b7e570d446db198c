"""Tools whose feature this node does not have yet. Each answers with an ``isError`` result that names what is
missing and which issue brings it, instead of pretending to work; ``memory_capabilities`` reports the same list.

When a feature lands, its tools move from :data:`MISSING` to a real handler module.
"""

from __future__ import annotations

from producers.mcp.tools.base import Handler, unavailable

__all__ = ["HANDLERS", "MISSING"]

_V070 = "is not available on this node yet (added in the original's v0.7.0; issue #17)"

MISSING: dict[str, str] = {
    "memory_replay": "sidechain transcripts (memory_replay) are not recorded by this node",
    **{f"memory_{name}": f"memory_{name} {_V070}" for name in (
        "calibrate_confidence",)},
}

HANDLERS: dict[str, Handler] = {name: unavailable(reason) for name, reason in MISSING.items()}
