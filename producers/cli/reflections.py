"""``ai-memory verify-reflection-chain MEMORY_ID``: the original's chain-integrity audit of a reflection. It walks
the ``reflects_on`` links back from the memory to depth 0 and re-checks each link's Ed25519 signature against its
observer's key (``memory_verify``); exit 0 when every link verifies, 8 (as ``verify``) otherwise. Links made by
an agent without a key on the node that wrote them are unsigned, and are reported as such.
"""

from __future__ import annotations

import argparse
from typing import Any

from producers.cli.spec import VerbSpec, emit, open_node
from producers.runtime.node import Node, NodeConfig
from producers.tools.reflection import REFLECTS_ON

__all__ = ["VERBS", "reflection_chain"]

#: The exit code of a log or chain that does not verify (as ``ai-memory verify``).
EXIT_UNVERIFIED = 8


async def reflection_chain(node: Node, memory_id: str) -> dict[str, Any]:
    """Every ``reflects_on`` link reachable backward from ``memory_id``, each with its verification."""
    links: list[dict[str, Any]] = []
    seen, frontier = {memory_id}, [memory_id]
    while frontier:
        current = frontier.pop(0)
        for link in await node.graph.get_links(current):
            if link.source_id != current or link.relation != REFLECTS_ON:
                continue
            check = await node.graph.verify(link.source_id, link.target_id, REFLECTS_ON)
            links.append({"source_id": link.source_id, "target_id": link.target_id, **check})
            if link.target_id not in seen:
                seen.add(link.target_id)
                frontier.append(link.target_id)
    verified = bool(links) and all(entry["signature_verified"] for entry in links)
    return {"memory_id": memory_id, "links": links, "link_count": len(links), "verified": verified}


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("memory_id", help="the reflection to audit")


async def _run(args: argparse.Namespace, config: NodeConfig) -> int:
    async with open_node(config) as node:
        await node.service.get(args.memory_id)  # 404 (exit 3) for an unknown id
        report = await reflection_chain(node, args.memory_id)
    emit(report)
    return 0 if report["verified"] else EXIT_UNVERIFIED


VERBS: list[VerbSpec] = [
    VerbSpec("verify-reflection-chain", "walk a reflection's reflects_on links back to depth 0 and verify each "
             "link's signature; exit 0 when all verify, 8 otherwise", _arguments, _run),
]
