"""Who may change a memory, or read its link timeline, over HTTP: its owner, as the original v0.7.0 decides (#930,
#941, #944, #954).

The owner is the agent that stored the memory (``metadata.agent_id``, kept through every update). An HTTP update,
promotion or deletion of a memory, a link from it, and a read of its link timeline, by any other caller is refused
with 403 and a body naming the owner and the caller. Archiving, restoring and purging over HTTP touch only the
caller's own memories (#936, #940): the others read as absent. Exempt, as in the original: a memory without an owner
(written before owners were recorded), the ``daemon`` caller, and, where the original allows it (delete, link,
timeline), the recipient of an inbox message or a shared memory. The operator (``X-AI-Memory-Admin-Token``) is not
gated. A caller without ``X-Agent-Id`` is a fresh ``anonymous:req-…`` agent, as for reads: it owns nothing it
stored in another request.

MCP and the CLI act as the node's own agent and are not gated, as the original's are not.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from producers.errors import NotOwnerError
from schemas import Memory

__all__ = ["DAEMON", "OwnerGate", "owner_of"]

#: The original's sentinel for boot-time and hook-driven writes: exempt from the gate.
DAEMON = "daemon"


def owner_of(memory: Memory) -> str:
    owner = memory.metadata.get("agent_id")
    return owner if isinstance(owner, str) else ""


def _inbox_target(memory: Memory) -> str:
    """The agent a message or a shared memory was sent to: ``target_agent_id`` (share, as the original stamps
    it) or ``recipient_agent_id`` (notify)."""
    for key in ("target_agent_id", "recipient_agent_id"):
        if isinstance(target := memory.metadata.get(key), str) and target:
            return target
    return ""


@dataclass(frozen=True, slots=True)
class OwnerGate:
    """The rule for one request's caller (the surface leaves the operator ungated)."""

    caller: str

    def owns(self, memory: Memory, *, inbox: bool) -> bool:
        """Whether the caller may change ``memory``: it has no owner, the caller owns it or is ``daemon``, or
        (``inbox``) the caller is the one it was sent to. Archiving and restoring by id follow it (#940), with
        the inbox carve-out: another's memory reads as absent there, so ids of others cannot be probed."""
        owner = owner_of(memory)
        return (not owner or self.caller in (owner, DAEMON)
                or (inbox and _inbox_target(memory) == self.caller))

    def memory(self, *, inbox: bool) -> Callable[[Memory], None]:
        """The check for a change of one memory; ``inbox`` lets an inbox message's recipient through."""
        def check(memory: Memory) -> None:
            if not self.owns(memory, inbox=inbox):
                raise NotOwnerError("caller does not own this memory",
                                    {"owner": owner_of(memory), "caller": self.caller})
        return check

    def source(self, source: Memory) -> None:
        """A new link starts at, and a link timeline is read from, a memory the caller owns (or whose inbox
        message it received)."""
        if not self.owns(source, inbox=True):
            raise NotOwnerError("caller does not own this source memory",
                                {"owner": owner_of(source), "caller": self.caller, "source_id": source.id})

    def purges(self, memory: Memory) -> bool:
        """Whether a purge of the archive by the caller removes ``memory``: only the caller's own (or one sent
        to it), as the original's #936, which has no carve-out for unowned rows there; the operator purges all."""
        return self.caller in (owner_of(memory), _inbox_target(memory))

    def link_ends(self, source: Memory, target: Memory | None) -> None:
        """A link is removed by whoever owns either end (both ends unowned: anyone)."""
        owner, target_owner = owner_of(source), owner_of(target) if target is not None else ""
        if not (owner or target_owner) or self.caller in (DAEMON, owner, _inbox_target(source), target_owner):
            return
        raise NotOwnerError("caller does not own either endpoint of this link",
                            {"source_owner": owner, "target_owner": target_owner, "caller": self.caller,
                             "source_id": source.id, "target_id": target.id if target is not None else ""})
