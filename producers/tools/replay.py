"""``memory_replay`` (the original's I4 sidechain transcripts): the transcript chain that produced a memory.

The original v0.7.0 ships the storage and replay primitives but no write path that links a transcript to a
memory (its docs: "returns ``count: 0`` for any memory until the operator wires the R5 ``pre_store`` hook"), so
its answer on every install is ``{"memory_id", "transcripts": [], "count": 0}``. This node records no transcripts
either (captured turns are memories of their own: ``memory_capture_turn``), so it gives the same answer, after
the original's argument checks (a ``verbose`` that is not a boolean is false, as there).
"""

from __future__ import annotations

from typing import Any

from producers.errors import ValidationError
from producers.input.validation import check_id
from producers.tools.base import Handler, ToolContext

__all__ = ["HANDLERS"]


async def replay(ctx: ToolContext, args: dict[str, Any]) -> Any:
    memory_id = args.get("memory_id")
    if not isinstance(memory_id, str):
        raise ValidationError("memory_id is required")
    check_id(memory_id)
    depth = args.get("depth")
    if depth is not None and (isinstance(depth, bool) or not isinstance(depth, int)):
        raise ValidationError("depth must be an integer or null")
    return {"memory_id": memory_id, "transcripts": [], "count": 0}


HANDLERS: dict[str, Handler] = {"memory_replay": replay}
