"""Tools whose feature this node does not have yet. Each answers with an ``isError`` result that names what is
missing and which issue brings it, instead of pretending to work; ``memory_capabilities`` reports the same list.

When a feature lands, its tools move from :data:`MISSING` to a real handler module.
"""

from __future__ import annotations

from producers.tools.base import Handler, unavailable

__all__ = ["HANDLERS", "MISSING"]

MISSING: dict[str, str] = {}

HANDLERS: dict[str, Handler] = {name: unavailable(reason) for name, reason in MISSING.items()}
