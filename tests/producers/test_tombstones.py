"""Deletes are tombstones: a deleted memory never comes back, neither through ``sync/push`` of an older copy nor
through a stored/imported event for its id that reaches the log later. Bulk forget leaves none (a clean-up, like
GC: an export imported afterwards restores those memories). On both read models."""

from __future__ import annotations

import httpx

from producers.runtime.node import Node
from tests.producers.test_sync import make_memory

BOTH_READ_MODELS = True

PUSH = "/api/v1/sync/push"


async def _push(client: httpx.AsyncClient, **body: object) -> dict[str, object]:
    r = await client.post(PUSH, json={"sender_agent_id": "peer", **body})
    assert r.status_code == 200, r.text
    answer: dict[str, object] = r.json()
    return answer


async def test_a_pushed_copy_of_a_deleted_memory_is_refused(client: httpx.AsyncClient, node: Node) -> None:
    stored = await client.post("/api/v1/memories", json={"title": "doomed", "content": "v1"})
    memory_id = stored.json()["id"]
    copy = (await client.get(f"/api/v1/memories/{memory_id}")).json()
    copy = copy.get("memory", copy)
    assert (await client.delete(f"/api/v1/memories/{memory_id}")).status_code == 200
    # A peer that missed the delete pushes its copy, even one it edited later: refused, and said so.
    newer = {**copy, "content": "edited on a peer", "updated_at": "2099-01-01T00:00:00+00:00"}
    body = await _push(client, memories=[newer])
    assert (body["applied"], body["skipped"], body["tombstoned"]) == (0, 1, [memory_id])
    assert node.model.queries.get(memory_id) is None
    assert (await client.get(f"/api/v1/memories/{memory_id}")).status_code == 404


async def test_a_deletion_that_arrives_first_buries_the_copy_that_follows(client: httpx.AsyncClient,
                                                                          node: Node) -> None:
    early = make_memory(id="7e0f8a7c-1111-4b8e-9f5e-3b1f3c1d2e02", title="deleted elsewhere")
    body = await _push(client, deletions=[early.id])
    assert (body["deleted"], body["noop"]) == (0, 1)  # nothing to delete here yet, but the tombstone stays
    body = await _push(client, memories=[early.to_api()])
    assert (body["applied"], body["tombstoned"]) == (0, [early.id])
    assert node.model.queries.get(early.id) is None
    again = await _push(client, deletions=[early.id])
    assert again["noop"] == 1


async def test_an_import_of_a_deleted_id_is_rejected_by_the_projector_a_forgotten_one_is_not(node: Node) -> None:
    gone = make_memory(id="7e0f8a7c-2222-4b8e-9f5e-3b1f3c1d2e03", title="deleted one")
    forgotten = make_memory(id="7e0f8a7c-3333-4b8e-9f5e-3b1f3c1d2e04", title="scratch forgotten")
    await node.service.import_memories([gone, forgotten], agent_id="peer")
    await node.service.delete(gone.id, agent_id="peer")
    count, _ = await node.service.forget(namespace=None, pattern="scratch", tier=None, agent_id="peer")
    assert count == 1 and node.model.queries.get(forgotten.id) is None
    assert node.model.queries.tombstoned([gone.id, forgotten.id, "other"]) == {gone.id}
    assert node.service.split_tombstoned([gone, forgotten]) == (
        [forgotten], [f"{gone.id}: deleted on this node (tombstone); a deleted memory is not restored"])
    # The events reach the log (the service's import does not check); the applier refuses the deleted one.
    await node.service.import_memories([gone, forgotten], agent_id="peer")
    await node.service.sync()
    assert node.model.queries.get(gone.id) is None and node.model.queries.get(forgotten.id) is not None
    # (their memory.embedded events, when a model is loaded, are refused too: no such memory)
    refused = [r for r in node.model.rejected_events() if "tombstone" in str(r["reason"])]
    assert [r["type"] for r in refused] == ["memory.imported"]
