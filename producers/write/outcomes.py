"""What a refused event means to its writer: the projectors decide racing writes in log order and record why
they refused one (:mod:`projectors.rules`); the writer, having waited for its own event, turns that reason into
the answer the original gives (409 with ``code``, 429, …).
"""

from __future__ import annotations

from producers.errors import CommandError, ConflictError, QuotaExceededError
from producers.write.writer import WriteResult
from projectors.rules import clash_id, quota_figures

__all__ = ["raise_if_refused", "refusal_error"]


def refusal_error(reason: str, *, agent_id: str, clash_message: str | None = None) -> CommandError:
    """The error for an event the projector refused with ``reason`` (a title taken first, a quota used up, a
    memory changed meanwhile): never a bare 409, the caller can tell a taken title from anything else.
    ``clash_message``: what a taken title says (the original's words for the command)."""
    existing = clash_id(reason)
    if existing is not None:
        return ConflictError(clash_message or reason, existing_id=existing)
    figures = quota_figures(reason)
    if figures is not None:
        return QuotaExceededError(agent_id=agent_id, limit=figures[0], current=figures[1], maximum=figures[2])
    return ConflictError(f"refused in log order: {reason}")


def raise_if_refused(write: WriteResult, *, agent_id: str, index: int = 0, clash_message: str | None = None) -> None:
    reason = write.refusal(index)
    if reason is not None:
        raise refusal_error(reason, agent_id=agent_id, clash_message=clash_message)
