"""Attested agent identity over HTTP: key registration, signed requests, 401 for forged, expired and replayed
signatures, the attestation in the event envelope and ``attest_level`` on memories."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from nacl.signing import SigningKey

from producers.http import create_app
from producers.identity.agent_client import AgentAuth
from producers.runtime.node import Node
from projectors import SQLiteReadModel
from projectors.rebuild import rebuild_sqlite
from schemas import Envelope
from schemas.request_signing import HEADER_SIGNATURE, sign_registration, sign_request

BOTH_READ_MODELS = True


ADMIN = {"X-AI-Memory-Admin-Token": "op-secret"}


@pytest.fixture
async def http(node: Node, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[httpx.AsyncClient]:
    monkeypatch.setenv("AI_MEMORY_ADMIN_TOKEN", "op-secret")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(node)),
                                 base_url="http://test") as c:
        yield c


async def register(http: httpx.AsyncClient, agent: str, key: SigningKey) -> httpx.Response:
    """The operator enrolls ``agent``'s key (the admin token; a first key needs the operator)."""
    return await http.post("/api/v1/identity/keys", json=sign_registration(key, agent), headers=ADMIN)


async def signed_post(http: httpx.AsyncClient, agent: str, key: SigningKey, path: str, body: object,
                      **sign: object) -> httpx.Response:
    raw = json.dumps(body).encode()
    headers = sign_request(key, agent, "POST", path, "", raw, **sign)  # type: ignore[arg-type]
    return await http.post(path, content=raw, headers={**headers, "content-type": "application/json"})


async def test_register_key_then_unsigned_claims_are_refused(http: httpx.AsyncClient) -> None:
    key = SigningKey.generate()
    created = await register(http, "alice", key)
    assert created.status_code == 201, created.text
    assert created.json()["key_id"].startswith("ed25519:")
    assert (await register(http, "alice", key)).status_code == 200  # the same key again: nothing new
    listed = (await http.get("/api/v1/identity/keys")).json()
    assert [k["agent_id"] for k in listed["keys"]] == ["alice"]
    by_body = await http.post("/api/v1/memories", json={"title": "t", "content": "c", "agent_id": "alice"})
    by_header = await http.post("/api/v1/memories", json={"title": "t", "content": "c"},
                                headers={"X-Agent-Id": "alice"})
    read_as = await http.get("/api/v1/memories", headers={"X-Agent-Id": "alice"})
    for refused in (by_body, by_header, read_as):
        assert refused.status_code == 401 and "must be signed" in refused.json()["error"]
    # Agents without a key are unaffected.
    assert (await http.post("/api/v1/memories", json={"title": "t", "content": "c", "agent_id": "bob"})
            ).status_code == 201


async def test_registration_needs_a_fresh_proof_of_the_key(http: httpx.AsyncClient) -> None:
    key, other = SigningKey.generate(), SigningKey.generate()
    forged = sign_registration(other, "alice")
    forged["public_key"] = sign_registration(key, "alice")["public_key"]
    assert (await http.post("/api/v1/identity/keys", json=forged)).status_code == 401
    stale = sign_registration(key, "alice", timestamp=int(time.time()) - 3600)
    assert (await http.post("/api/v1/identity/keys", json=stale)).status_code == 401
    bad = await http.post("/api/v1/identity/keys", json={**sign_registration(key, "alice"), "public_key": "AAAA"})
    assert bad.status_code == 400
    assert (await http.get("/api/v1/identity/keys")).json()["count"] == 0


async def test_signed_store_is_self_signed_and_the_envelope_carries_the_signature(http: httpx.AsyncClient,
                                                                                  node: Node) -> None:
    key = SigningKey.generate()
    await register(http, "alice", key)
    auth = AgentAuth("alice", key)
    created = await http.post("/api/v1/memories", json={"title": "signed", "content": "by alice",
                                                        "agent_id": "alice"}, auth=auth)
    assert created.status_code == 201, created.text
    # alice reads her private memory as herself (signed: her id has a key).
    got = (await http.get(f"/api/v1/memories/{created.json()['id']}", auth=auth)).json()
    assert got["attest_level"] == "self_signed" and got["metadata"]["attest_level"] == "self_signed"
    records = await node.log.read(after={}, limit=100)
    stored = [r.event for r in records if r.event.envelope.type == "memory.stored"]
    att = stored[-1].envelope.attestation
    assert att is not None and att["agent_id"] == "alice" and att["path"] == "/api/v1/memories"
    # Unsigned events keep their exact canonical bytes: no attestation key at all.
    registered = next(r.event for r in records if r.event.envelope.type == "identity.key_registered")
    assert b"attestation" not in registered.body
    assert Envelope.from_dict(json.loads(stored[-1].body)).attestation == att


async def test_forged_tampered_expired_and_replayed_signatures_are_refused(http: httpx.AsyncClient) -> None:
    key, impostor = SigningKey.generate(), SigningKey.generate()
    await register(http, "alice", key)
    path, body = "/api/v1/memories", {"title": "x", "content": "y", "agent_id": "alice"}
    assert (await signed_post(http, "alice", impostor, path, body)).status_code == 401
    raw = json.dumps(body).encode()
    headers = sign_request(key, "alice", "POST", path, "", raw)
    tampered = await http.post(path, content=raw.replace(b'"y"', b'"z"'), headers=headers)
    assert tampered.status_code == 401 and "does not verify" in tampered.json()["error"]
    expired = await signed_post(http, "alice", key, path, body, timestamp=int(time.time()) - 301)
    assert expired.status_code == 401 and "window" in expired.json()["error"]
    headers = sign_request(key, "alice", "POST", path, "", raw, nonce="n-0123456789")
    first = await http.post(path, content=raw, headers={**headers, "content-type": "application/json"})
    replay = await http.post(path, content=raw, headers={**headers, "content-type": "application/json"})
    assert first.status_code == 201 and replay.status_code == 401 and "replay" in replay.json()["error"]
    incomplete = {k: v for k, v in headers.items() if k != "X-Agent-Nonce"}
    assert (await http.post(path, content=raw, headers=incomplete)).status_code == 401
    # A signature for another path does not authorize this one.
    moved = sign_request(key, "alice", "POST", "/api/v1/recall", "", raw)
    assert (await http.post(path, content=raw, headers=moved)).status_code == 401
    assert HEADER_SIGNATURE in moved


async def test_attest_levels_follow_the_latest_write(http: httpx.AsyncClient, node: Node, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    alice, bob = SigningKey.generate(), SigningKey.generate()
    await register(http, "alice", alice)
    await register(http, "bob", bob)
    created = await http.post("/api/v1/memories", json={"title": "t", "content": "c", "agent_id": "alice",
                                                        "metadata": {"attest_level": "self_signed"}},
                              auth=AgentAuth("alice", alice))
    memory_id = created.json()["id"]
    path = f"/api/v1/memories/{memory_id}"
    # Only its owner changes a memory over HTTP (the original's rule; bob may not even read alice's private
    # memory: 404, as its GET), unless the operator's token rides along.
    vouch = {"content": "vouched", "agent_id": "bob"}
    assert (await http.put(path, json=vouch, auth=AgentAuth("bob", bob))).status_code == 404
    monkeypatch.setenv("AI_MEMORY_ADMIN_TOKEN", "op-secret")
    operator = {"X-AI-Memory-Admin-Token": "op-secret"}
    assert (await http.put(path, json=vouch, auth=AgentAuth("bob", bob), headers=operator)).status_code == 200
    as_alice = AgentAuth("alice", alice)  # the author reads her private memory (signed: her id has a key)
    assert (await http.get(path, auth=as_alice)).json()["attest_level"] == "peer_attested"
    # An unsigned write (by an agent without a key) leaves the memory unsigned; forging the level is ignored.
    assert (await http.put(path, json={"content": "edited", "agent_id": "carol",
                                       "metadata": {"attest_level": "self_signed"}}, headers=operator)
            ).status_code == 200
    got = (await http.get(path, auth=as_alice)).json()
    assert got["attest_level"] == "unsigned" and "attest_level" not in got["metadata"]
    forged = await http.post("/api/v1/memories", json={"title": "f", "content": "c", "agent_id": "carol",
                                                       "metadata": {"attest_level": "self_signed"}})
    forged_path = f"/api/v1/memories/{forged.json()['id']}"
    assert (await http.get(forged_path, headers={"X-Agent-Id": "carol"})).json()["attest_level"] == "unsigned"


async def test_revocation_needs_the_admin_token_and_rotation_needs_the_current_key(
        http: httpx.AsyncClient, node: Node, monkeypatch: pytest.MonkeyPatch) -> None:
    old, new = SigningKey.generate(), SigningKey.generate()
    await register(http, "alice", old)
    assert (await register(http, "alice", new)).status_code == 401  # an unsigned rotation
    rotated = await http.post("/api/v1/identity/keys", json=sign_registration(new, "alice"),
                              auth=AgentAuth("alice", old))
    assert rotated.status_code == 201
    assert (await http.delete("/api/v1/identity/keys/alice")).status_code == 403
    monkeypatch.setenv("AI_MEMORY_ADMIN_TOKEN", "op-secret")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(node)),
                                 base_url="http://test") as admin:
        assert (await admin.delete("/api/v1/identity/keys/alice",
                                   headers={"X-AI-Memory-Admin-Token": "wrong"})).status_code == 403
        revoked = await admin.delete("/api/v1/identity/keys/alice", headers={"X-AI-Memory-Admin-Token": "op-secret"})
        assert revoked.status_code == 200
        # Without a key, alice is an ordinary (unsigned) agent again.
        assert (await admin.post("/api/v1/memories", json={"title": "t", "content": "c", "agent_id": "alice"})
                ).status_code == 201


async def test_a_rebuilt_read_model_has_the_same_levels(node: Node, http: httpx.AsyncClient,
                                                        tmp_path: Path) -> None:
    key = SigningKey.generate()
    await register(http, "alice", key)
    created = await http.post("/api/v1/memories", json={"title": "t", "content": "c", "agent_id": "alice"},
                              auth=AgentAuth("alice", key))
    await rebuild_sqlite(node.log, node.keyring, tmp_path / "rebuilt.db")
    rebuilt = SQLiteReadModel(tmp_path / "rebuilt.db")
    try:
        again = rebuilt.queries.get(created.json()["id"])
        assert again is not None and again.metadata["attest_level"] == "self_signed"
        assert [k.agent_id for k in rebuilt.identity.agent_keys()] == ["alice"]
    finally:
        rebuilt.close()
