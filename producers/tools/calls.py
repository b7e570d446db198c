"""What a tool call carries across transports: moved out of ``producers.mcp.server`` so HTTP needs no MCP."""

from __future__ import annotations

from producers.errors import reply_for

#: Where the HTTP layer leaves a verified agent signature on the request (``scope["state"]``) for tool calls.
ATTESTATION_STATE = "ai_memory_attestation"
#: Where it leaves the agent the request reads as (``X-Agent-Id``, see
#: :func:`producers.identity.visibility.reading_as`).
READER_STATE = "ai_memory_reader"


def error_text(exc: BaseException) -> str:
    """The text of an ``isError`` result: the same translation as HTTP (``reply_for``), worded as the original."""
    reply = reply_for(exc)
    body = reply.body
    if body.get("code") == "CONFLICT":
        return (f"CONFLICT: {body['error']} (existing id: {body.get('existing_id')}). Pass on_conflict='merge' to "
                "update in place or 'version' to suffix the title.")
    if body.get("error") == "quorum_not_met":
        return (f"quorum_not_met: {body['got']} of {body['needed']} nodes applied the write ({body['reason']}); "
                "the write is in the log and will be applied everywhere; retry the read later")
    message = str(body.get("error", "internal error"))
    return "memory not found" if reply.status == 404 and message == "not found" else message
