"""The server's vector catch-up: memories stored while the embedder failed (a remote service down, its circuit
open) get their vectors once it answers again, without anyone running ``ai-memory reembed --missing``.

It looks only when :attr:`producers.memory.semantic.Semantic.behind` says a write of this process went without its
vector, and only while the embedder is ready; then it is ``reembed --missing`` in-process, which appends a
``memory.embedded`` event for each memory that has no vector of the node's current model. Memories stored
without vectors by a process that is gone (a CLI verb, a server restarted meanwhile) need ``ai-memory reembed
--missing`` by hand: a scan at every start would have every node of a cluster embed them all again.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from producers.runtime.node import Node

__all__ = ["catch_up_vectors", "catch_up_vectors_forever"]

log = logging.getLogger("ai_memory.catchup")

AGENT = "system:embed-catch-up"


async def catch_up_vectors(node: Node) -> int:
    """One pass: embed every memory missing its vector, when it may be needed and the embedder works.
    Returns how many memories got a vector."""
    semantic = node.semantic
    if not semantic.behind or not semantic.ready:
        return 0
    semantic.behind = False  # a failure during the pass sets it again
    done = await node.service.reembed(only_missing=True, agent_id=AGENT)
    if done:
        log.info("embedded %d memories stored while the embedder was unavailable", done)
    return done


async def catch_up_vectors_forever(node: Node, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            await catch_up_vectors(node)
        except Exception:
            node.semantic.behind = True
            log.exception("vector catch-up failed; retrying in %.0f s", interval)
