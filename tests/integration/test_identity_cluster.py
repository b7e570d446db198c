"""Signed requests on two nodes of one JetStream stream: a request signed for one node is refused by the other
(a replay there used to succeed, as each node only remembers its own nonces), and a node that shares its log
refuses a signature naming no node, which :class:`AgentAuth` then signs again for it."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from nacl.signing import SigningKey

from infra.cluster import NatsServer
from producers.http import create_app
from producers.identity.agent_client import AgentAuth
from producers.runtime.node import Node, NodeConfig
from schemas.request_signing import HEADER_NODE_ID, sign_registration, sign_request
from tests.node_pair import trusting_nodes


@pytest.fixture
async def pair(tmp_path: Path, nats_server: NatsServer) -> AsyncIterator[tuple[Node, Node]]:
    stream = f"ident-{uuid.uuid4().hex[:8]}"
    config = NodeConfig(log_url=f"{nats_server.url}/{stream}", stream=stream, embedder="off")
    async with trusting_nodes(tmp_path, config) as (a, b):
        yield a, b


def client(node: Node) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(node)), base_url="http://test")


async def test_a_request_signed_for_one_node_is_not_replayable_on_another(pair: tuple[Node, Node]) -> None:
    a, b = pair
    key = SigningKey.generate()
    body = sign_registration(key, "alice")
    _, write = await a.identity.register_key("alice", body["public_key"], body["timestamp"], body["proof"],
                                             actor="alice", operator=True)
    await b.service.wait_for(write.clock(), timeout=10)
    assert a.identity.verifier.require_node and b.identity.verifier.require_node  # both share the stream
    raw = json.dumps({"title": "once", "content": "c", "agent_id": "alice"}).encode()
    headers = {**sign_request(key, "alice", "POST", "/api/v1/memories", "", raw, node=a.identity.verifier.node_id),
               "content-type": "application/json"}
    async with client(a) as on_a, client(b) as on_b:
        assert (await on_a.post("/api/v1/memories", content=raw, headers=headers)).status_code == 201
        replay = await on_b.post("/api/v1/memories", content=raw, headers=headers)
        assert replay.status_code == 401 and "made for node" in replay.json()["error"]
        unbound = sign_request(key, "alice", "POST", "/api/v1/memories", "", raw)
        refused = await on_b.post("/api/v1/memories", content=raw, headers=unbound)
        assert refused.status_code == 401 and refused.headers[HEADER_NODE_ID] == b.identity.verifier.node_id
        auth = AgentAuth("alice", key)
        done = await on_b.post("/api/v1/memories", json={"title": "on b", "content": "c", "agent_id": "alice"},
                               auth=auth)
        assert done.status_code == 201 and auth.node == b.identity.verifier.node_id
