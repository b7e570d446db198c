"""``POST /api/v1/sync/push`` beyond memories: a peer's links (with the original's signature verification),
pending actions, pending decisions, namespace standards and their clears — each applied as events, invalid
items reported, a re-push a no-op, ``dry_run`` the same counters without a write. On both read models."""

from __future__ import annotations

import shutil
from typing import Any

import httpx

from producers.runtime.node import Node
from schemas import SignableLink, load_or_create_node_key, sign_link
from schemas.request_signing import sign_registration

BOTH_READ_MODELS = True
V1 = "/api/v1"
COUNTERS = ("applied", "deleted", "archived", "restored", "links_applied", "pendings_applied",
            "pending_decisions_applied", "namespace_meta_applied", "namespace_meta_cleared", "noop", "skipped")


async def store(client: httpx.AsyncClient, title: str, namespace: str = "global") -> str:
    r = await client.post(f"{V1}/memories", json={"title": title, "content": f"about {title}", "namespace": namespace})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def push(client: httpx.AsyncClient, **arrays: Any) -> dict[str, Any]:
    r = await client.post(f"{V1}/sync/push", json={"sender_agent_id": "peer-1", **arrays},
                          headers={"X-Agent-Id": "peer-1"})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def counters(body: dict[str, Any]) -> dict[str, int]:
    return {k: v for k, v in body.items() if k in COUNTERS and v}


async def offset(node: Node) -> dict[str, int]:
    """The log's end: unchanged when a push wrote nothing."""
    return await node.log.end_offsets()


async def test_links_verified_kept_as_sent_and_idempotent(client: httpx.AsyncClient, node: Node) -> None:
    a, b, c = await store(client, "a"), await store(client, "b"), await store(client, "c")
    carol = load_or_create_node_key(node.config.data_dir / "peer-keys", "carol")  # a peer agent's key pair
    shutil.copy(node.config.data_dir / "peer-keys" / "carol.pub", node.config.data_dir / "keys")  # public only
    stamp, until = "2026-01-02T03:04:05+00:00", "2026-02-01T00:00:00+00:00"
    signed = {"source_id": a, "target_id": b, "relation": "supersedes", "created_at": "2026-01-01T00:00:00+00:00",
              "valid_from": stamp, "observed_by": "carol",
              "signature": list(sign_link(carol.signing_key, SignableLink(a, b, "supersedes", "carol", stamp)))}
    tampered = {**signed, "relation": "contradicts"}  # the signature covers the relation
    no_key = {**signed, "source_id": b, "target_id": c, "observed_by": "dave",
              "signature": list(sign_link(carol.signing_key, SignableLink(b, c, "supersedes", "dave", stamp)))}
    plain = {"source_id": c, "target_id": a, "relation": "related_to", "created_at": "2026-01-01T00:00:00+00:00",
             "valid_until": until}
    orphan = {"source_id": a, "target_id": "5f1d2a3c-0000-4000-8000-000000000000", "relation": "related_to",
              "created_at": ""}
    bad = {"source_id": a, "target_id": a, "relation": "related_to", "created_at": ""}
    links = [signed, tampered, no_key, plain, orphan, bad]
    before = await offset(node)
    preview = await push(client, links=links, dry_run=True)
    assert await offset(node) == before  # nothing written
    body = await push(client, links=links)
    assert counters(preview) == counters(body) == {"links_applied": 3, "skipped": 3}
    assert len(body["errors"]) == 3 and any("does not verify" in e for e in body["errors"])
    assert any("target memory not found" in e for e in body["errors"])
    stored = {(lk.source_id, lk.relation): lk for lk in await node.graph.all_links()}
    assert set(stored) == {(a, "supersedes"), (b, "supersedes"), (c, "related_to")}
    assert stored[a, "supersedes"].attest_level == "peer_attested"
    assert (stored[a, "supersedes"].valid_from, stored[a, "supersedes"].observed_by) == (stamp, "carol")
    assert stored[a, "supersedes"].created_at == "2026-01-01T00:00:00+00:00"
    assert stored[b, "supersedes"].attest_level == "unsigned"  # no key for dave here
    assert stored[b, "supersedes"].signature is not None  # kept, for a memory_verify once the key is enrolled
    assert (stored[c, "related_to"].attest_level, stored[c, "related_to"].valid_until) == ("unsigned", until)
    verified = await node.graph.verify(a, b, "supersedes")
    assert (verified["signature_verified"], verified["signed_by"]) == (True, "carol")
    # The same push again: nothing new, nothing written.
    end = await offset(node)
    again = await push(client, links=[signed, no_key, plain])
    assert counters(again) == {"noop": 3} and await offset(node) == end
    # A peer's copy that ends an open link replaces ours (an invalidation travelling).
    ended = {**signed, "valid_until": until,
             "signature": list(sign_link(carol.signing_key, SignableLink(a, b, "supersedes", "carol", stamp,
                                                                            until)))}
    assert counters(await push(client, links=[ended])) == {"links_applied": 1}
    moved = await node.graph.get_links(a)
    ab = next(lk for lk in moved if lk.target_id == b)
    assert (ab.valid_until, ab.attest_level) == (until, "peer_attested")


async def test_links_verify_with_a_key_registered_in_the_log(client: httpx.AsyncClient, node: Node) -> None:
    """No key file for erin here, but erin registered her key with the identity domain: that key decides."""
    a, b = await store(client, "a"), await store(client, "b")
    erin = load_or_create_node_key(node.config.data_dir / "peer-keys", "erin").signing_key
    body = sign_registration(erin, "erin")
    await node.identity.register_key("erin", body["public_key"], body["timestamp"], body["proof"], actor="erin",
                                     operator=True)
    stamp = "2026-01-02T03:04:05+00:00"
    good = {"source_id": a, "target_id": b, "relation": "related_to", "created_at": stamp, "valid_from": stamp,
            "observed_by": "erin", "signature": list(sign_link(erin, SignableLink(a, b, "related_to", "erin", stamp)))}
    forged = {**good, "source_id": b, "target_id": a}
    assert counters(await push(client, links=[good, forged])) == {"links_applied": 1, "skipped": 1}
    (stored,) = await node.graph.all_links()
    assert (stored.source_id, stored.attest_level) == (a, "peer_attested")


async def test_links_to_memories_in_the_same_push(client: httpx.AsyncClient, node: Node) -> None:
    a = await store(client, "a")
    incoming = (await client.get(f"{V1}/memories/{a}")).json()
    other = {**incoming, "id": "7a1d2a3c-0000-4000-8000-000000000001", "title": "from the peer"}
    link = {"source_id": a, "target_id": other["id"], "relation": "related_to", "created_at": ""}
    preview = await push(client, memories=[other], links=[link], dry_run=True)
    body = await push(client, memories=[other], links=[link])
    assert counters(preview) == counters(body) == {"applied": 1, "links_applied": 1}


def pending(pending_id: str, *, title: str, status: str = "pending", **extra: Any) -> dict[str, Any]:
    """The original's pending-action wire shape: a governed store waiting in namespace ``team``."""
    payload = {"id": "ignored", "tier": "long", "namespace": "team", "title": title, "content": "x", "tags": [],
               "priority": 5, "confidence": 1.0, "source": "api", "access_count": 0,
               "created_at": "2026-01-01T00:00:00+00:00", "updated_at": "2026-01-01T00:00:00+00:00",
               "metadata": {"agent_id": "alice"}}
    return {"id": pending_id, "action_type": "store", "namespace": "team", "payload": payload,
            "requested_by": "alice", "requested_at": "2026-01-01T00:00:00+00:00", "status": status,
            "approvals": [], **extra}


P1, P2, P3, P4 = (f"0000000{i}-aaaa-4bbb-8ccc-000000000000" for i in range(1, 5))


async def test_pendings_and_decisions(client: httpx.AsyncClient, node: Node) -> None:
    rows = [pending(P1, title="approved here"), pending(P2, title="rejected here"),
            pending(P3, title="decided there", status="rejected", decided_by="bob",
                    decided_at="2026-01-01T01:00:00+00:00"),
            {"id": P4, "action_type": "launch", "namespace": "team"}]
    decisions = [{"id": P1, "approved": True, "decider": "bob"}, {"id": P2, "approved": False, "decider": "bob"},
                 {"id": "9f000000-0000-4000-8000-000000000000", "approved": True, "decider": "bob"},
                 {"id": P3, "approved": True, "decider": "mallory"}, {"id": P1, "approved": "yes"}]
    before = await offset(node)
    preview = await push(client, pendings=rows, pending_decisions=decisions, dry_run=True)
    assert await offset(node) == before
    body = await push(client, pendings=rows, pending_decisions=decisions)
    # Unknown pending (no-op), already decided (no-op: the first decision stands), two malformed (skipped).
    expected = {"pendings_applied": 3, "pending_decisions_applied": 2, "noop": 2, "skipped": 2}
    assert counters(preview) == counters(body) == expected
    state = {p.id: p for p in await node.governance.list_pending(limit=10)}
    assert (state[P1].status, state[P1].decided_by) == ("approved", "bob")
    assert (state[P2].status, state[P3].status, state[P3].decided_by) == ("rejected", "rejected", "bob")
    assert state[P1].requested_at == "2026-01-01T00:00:00+00:00" and P4 not in state
    # The approval ran the action (the original's execute_pending_action); the rejections ran nothing.
    titles = {m.title for m in node.model.queries.all_memories()}
    assert "approved here" in titles and not titles & {"rejected here", "decided there"}
    end = await offset(node)
    again = await push(client, pendings=rows[:3], pending_decisions=decisions[:2])
    assert counters(again) == {"noop": 5} and await offset(node) == end


async def test_pending_row_decided_there_records_its_status(client: httpx.AsyncClient, node: Node) -> None:
    await push(client, pendings=[pending(P1, title="waiting")])
    later = pending(P1, title="waiting", status="approved", decided_by="bob", decided_at="2026-01-02T00:00:00Z")
    assert counters(await push(client, pendings=[later])) == {"pendings_applied": 1}
    (row,) = await node.governance.list_pending(limit=10)
    assert (row.status, row.decided_by) == ("approved", "bob")
    # A row that says approved records the decision and runs nothing: only a decision runs an action.
    assert "waiting" not in {m.title for m in node.model.queries.all_memories()}
    # A store whose would-be memory is not one (the original's Memory shape) is refused before anything lands.
    broken = pending(P2, title="broken")
    broken["payload"] = {**broken["payload"], "priority": 42}
    body = await push(client, pendings=[broken])
    assert counters(body) == {"skipped": 1} and "pendings:" in body["errors"][0]


async def test_namespace_meta_and_clears(client: httpx.AsyncClient, node: Node) -> None:
    standard = await store(client, "_standard:team", namespace="team")
    meta = [{"namespace": "team", "standard_id": standard, "parent_namespace": "org",
             "updated_at": "2026-01-01T00:00:00+00:00"},
            {"namespace": "lab", "standard_id": standard, "updated_at": "2026-01-01T00:00:00+00:00"},
            {"namespace": "BAD NAMESPACE!", "standard_id": standard}]
    before = await offset(node)
    preview = await push(client, namespace_meta=meta, dry_run=True)
    assert await offset(node) == before
    body = await push(client, namespace_meta=meta)
    assert counters(preview) == counters(body) == {"namespace_meta_applied": 2, "skipped": 1}
    got = await node.governance.get_standard("team")
    assert (got["standard_id"], got["parent"]) == (standard, "org")
    older = {**meta[0], "parent_namespace": None, "updated_at": "2025-01-01T00:00:00+00:00"}
    assert counters(await push(client, namespace_meta=[*meta[:2], older])) == {"noop": 3}
    clears = ["lab", "nowhere", "BAD NAMESPACE!"]
    preview = await push(client, namespace_meta_clears=clears, dry_run=True)
    body = await push(client, namespace_meta_clears=clears)
    assert counters(preview) == counters(body) == {"namespace_meta_cleared": 1, "noop": 1, "skipped": 1}
    assert (await node.governance.get_standard("lab"))["standard_id"] is None
    assert counters(await push(client, namespace_meta_clears=["lab"])) == {"noop": 1}
