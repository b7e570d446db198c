"""Lifecycle and the graph together: consolidation's derived_from links keep pointing at the archived sources
(provenance outlives the archive), a restore brings the node back, and a purge finally closes the links."""

from __future__ import annotations

from producers.input.commands import parse_create
from producers.runtime.node import Node
from schemas import now_ts

BOTH_READ_MODELS = True


async def _store(node: Node, title: str) -> str:
    cmd = parse_create({"title": title, "content": f"{title} content", "namespace": "infra"}, now=now_ts())
    return (await node.service.store(cmd, agent_id="alice")).memory.id


async def test_consolidated_sources_keep_their_provenance_links_until_purged(node: Node) -> None:
    a, b = await _store(node, "pg"), await _store(node, "redis")
    merged = await node.lifecycle.consolidate([a, b], title="stores", summary="pg and redis", namespace="infra",
                                              agent_id="alice")
    new_id = merged.memory.id
    links = await node.graph.get_links(new_id)
    assert {(lk.source_id, lk.target_id, lk.relation) for lk in links} == {
        (new_id, a, "derived_from"), (new_id, b, "derived_from")}
    assert node.service.queries.get(a) is None  # archived, not live
    _, lineage = await node.graph.lineage(new_id)
    assert {n.node.id for n in lineage} == {a, b}  # archived sources are still reachable, with their titles
    assert {n.node.title for n in lineage} == {"pg", "redis"}

    await node.lifecycle.restore(a, agent_id="alice")
    assert {lk.target_id for lk in await node.graph.get_links(new_id)} == {a, b}

    before_purge = (await node.log.end_offsets())
    await node.lifecycle.purge(ids=[b], agent_id="alice")
    assert {lk.target_id for lk in await node.graph.get_links(new_id)} == {a}
    # Time travel still shows the link to the purged source before the purge.
    at = max(before_purge.values())
    assert {lk.target_id for lk in await node.graph.get_links(new_id, as_of=at)} == {a, b}
