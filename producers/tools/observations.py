"""``memory_recall_observations`` (the original's #886): what each recall returned, read from the log; and
``memory_calibrate_confidence`` (its #758), the report over the recalls' confidence shadow observations
(``producers.memory.confidence``), read from the log as well.

Every recall here already appends one ``memory.touched`` event naming the memories it returned, in rank order;
that event is the observation record, so nothing new is written. Each returned memory is one row:
``recall_id`` (the event's id), ``memory_id``, ``retriever`` (``"recall"``), ``rank`` (1-based), ``observed_at``.
What this node does not record is null or false: ``score`` (null), ``consumed`` (false; nothing marks an
observation consumed here), ``consumed_at`` and ``consumed_by_memory_id`` (null). Filters and limits are the
original's (``recall_id``, ``consumed``, ``since``/``until`` RFC 3339, ``limit`` 200 up to 1000, newest first).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from producers.errors import ValidationError
from producers.memory.confidence import DEFAULT_WINDOW_DAYS, calibrate
from producers.memory.log_scan import envelopes_of
from producers.tools.base import Handler, ToolContext, opt_bool, opt_str
from schemas import parse_ts
from schemas.events import MemoryTouched

__all__ = ["HANDLERS"]

DEFAULT_LIMIT, MAX_LIMIT = 200, 1000
#: Past this a window reaches before year 1 (the original's i64 days would overflow its clock there too).
MAX_WINDOW_DAYS = 700_000


def _limit(args: dict[str, Any]) -> int:
    value = args.get("limit")
    if value is None:
        return DEFAULT_LIMIT
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValidationError("limit must be a non-negative integer")
    return min(value, MAX_LIMIT)


def _time(args: dict[str, Any], name: str) -> Any:
    value = (opt_str(args, name) or "").strip()
    if not value:
        return None
    try:
        return parse_ts(value)
    except ValueError:
        raise ValidationError(f"{name} is not valid RFC3339: '{value}'") from None


async def recall_observations(ctx: ToolContext, args: dict[str, Any]) -> Any:
    recall_id = (opt_str(args, "recall_id") or "").strip() or None
    consumed = opt_bool(args, "consumed") if args.get("consumed") is not None else None
    since, until, limit = _time(args, "since"), _time(args, "until"), _limit(args)
    rows: list[dict[str, Any]] = []
    if consumed is True:  # nothing is ever consumed here
        return {"observations": rows, "count": 0}
    await ctx.node.writer.background.settle()  # the touches of the recalls answered before this call
    async for envelope in envelopes_of(ctx.node.log, MemoryTouched.TYPE):
        if recall_id is not None and envelope.event_id != recall_id:
            continue
        at = str(envelope.payload.get("at") or envelope.ts)
        when = parse_ts(at)
        if (since is not None and when < since) or (until is not None and when > until):
            continue
        rows += [{"recall_id": envelope.event_id, "memory_id": mid, "retriever": "recall", "rank": rank,
                  "score": None, "consumed": False, "observed_at": at, "consumed_at": None,
                  "consumed_by_memory_id": None} for rank, mid in enumerate(envelope.payload.get("ids", []), 1)]
    rows.sort(key=lambda r: (r["observed_at"], -r["rank"]), reverse=True)
    rows = rows[:limit]
    return {"observations": rows, "count": len(rows)}


async def calibrate_confidence(ctx: ToolContext, args: dict[str, Any]) -> Any:
    """The original's Form 5 report over the shadow observations of the last ``days`` (default 30). As there, a
    ``days`` that is not an integer falls back to the default and ``output_format`` changes nothing over MCP."""
    days = args.get("days")
    if isinstance(days, bool) or not isinstance(days, int):
        days = DEFAULT_WINDOW_DAYS
    if days <= 0:
        raise ValidationError("days must be a positive integer")
    days = min(days, MAX_WINDOW_DAYS)
    await ctx.node.writer.background.settle()  # the shadow observations of the recalls answered before this call
    return {"report": await calibrate(ctx.node.log, days, datetime.now(UTC))}


HANDLERS: dict[str, Handler] = {"memory_recall_observations": recall_observations,
                                "memory_calibrate_confidence": calibrate_confidence}
