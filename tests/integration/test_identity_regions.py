"""Attested identity across the hive (#16 item 4), on a real NATS supercluster of two regions, one node each:
a key registered in one region is honoured in the other once the event has reached it, and a revocation
likewise; a request signed for a node in one region and replayed to a node in the other is refused (signatures
are bound to a node, and a node on a regional log, whose events other regions' nodes serve, requires the binding
as on any shared log)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import pytest_asyncio
from nacl.signing import SigningKey

from infra.cluster.supercluster import NatsSupercluster
from producers.http import create_app
from producers.runtime.node import Node, NodeConfig
from schemas.request_signing import HEADER_NODE_ID, sign_registration, sign_request
from tests.node_pair import trust_each_other

pytestmark = [pytest.mark.nats, pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]
REGIONS = ("us", "ap")
PATH = "/api/v1/memories"


@pytest.fixture(scope="module")
def hive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsSupercluster]:
    from tests.conftest import _require_nats_server

    _require_nats_server()
    with NatsSupercluster(store_dir=tmp_path_factory.mktemp("hive"), regions=REGIONS, servers_per_region=1) as h:
        yield h


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def nodes(hive: NatsSupercluster, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[dict[str, Node]]:
    root = tmp_path_factory.mktemp("nodes")
    trust_each_other(root, REGIONS)
    opened: dict[str, Node] = {}
    try:
        for region in REGIONS:
            node = await Node.open(NodeConfig(data_dir=root / region, log_url=hive.log_url(region),
                                              node_id=f"node-{region}", embedder="off"))
            opened[region] = node
            await node.start()
        yield opened
    finally:
        for node in opened.values():
            await node.close()


def _client(node: Node) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(node)), base_url="http://test")


def _signed(key: SigningKey, agent: str, body: bytes, node: Node | None) -> dict[str, str]:
    bound = node.identity.verifier.node_id if node is not None else ""
    return {**sign_request(key, agent, "POST", PATH, "", body, node=bound), "content-type": "application/json"}


def _body(agent: str, title: str) -> bytes:
    return json.dumps({"title": title, "content": "signed", "agent_id": agent}).encode()


async def test_a_key_registered_or_revoked_in_one_region_is_honoured_in_the_other(nodes: dict[str, Node]) -> None:
    us, ap = nodes["us"], nodes["ap"]
    key = SigningKey.generate()
    proof = sign_registration(key, "alice")
    _, registered = await us.identity.register_key("alice", proof["public_key"], proof["timestamp"],
                                                   proof["proof"], actor="operator", operator=True)
    assert "ai-memory_us" in registered.clock()  # the registration is us's event: it reaches ap by the mirror
    await ap.service.wait_for(registered.clock(), timeout=30)
    async with _client(ap) as on_ap:
        signed = await on_ap.post(PATH, content=_body("alice", "in ap"), headers=_signed(
            key, "alice", _body("alice", "in ap"), ap))
        assert signed.status_code == 201, signed.text
        unsigned = await on_ap.post(PATH, content=_body("alice", "unsigned"),
                                    headers={"content-type": "application/json"})
        assert unsigned.status_code == 401, unsigned.text  # ap knows alice has a key: her claims must be signed
        revoked = await us.identity.revoke_key("alice", actor="operator", reason="hive proof")
        await ap.service.wait_for(revoked.clock(), timeout=30)
        after = await on_ap.post(PATH, content=_body("alice", "after revoke"), headers=_signed(
            key, "alice", _body("alice", "after revoke"), ap))
        assert after.status_code == 401, after.text


async def test_a_request_signed_in_one_region_is_refused_when_replayed_in_another(nodes: dict[str, Node]) -> None:
    us, ap = nodes["us"], nodes["ap"]
    assert us.identity.verifier.require_node and ap.identity.verifier.require_node  # regional logs are shared
    key = SigningKey.generate()
    proof = sign_registration(key, "bob")
    _, registered = await us.identity.register_key("bob", proof["public_key"], proof["timestamp"], proof["proof"],
                                                   actor="operator", operator=True)
    await ap.service.wait_for(registered.clock(), timeout=30)
    body = _body("bob", "once only")
    headers = _signed(key, "bob", body, us)
    async with _client(us) as on_us, _client(ap) as on_ap:
        assert (await on_us.post(PATH, content=body, headers=headers)).status_code == 201
        replay = await on_ap.post(PATH, content=body, headers=headers)  # within the window, another region
        assert replay.status_code == 401 and "made for node" in replay.json()["error"], replay.text
        again = await on_us.post(PATH, content=body, headers=headers)  # and the original node remembers it
        assert again.status_code == 401, again.text
        unbound = await on_ap.post(PATH, content=body, headers=_signed(key, "bob", body, None))
        assert unbound.status_code == 401 and unbound.headers[HEADER_NODE_ID] == ap.identity.verifier.node_id
