"""T5 in CI: a hive of three regions x one ai-memory node on a real NATS supercluster, the regions' gateways
through WAN proxies (20 ms) that can cut and heal the links.

One nats-server per region (the launcher runs three: nine servers are too heavy for a two-core CI runner; the
regional log's behaviour does not depend on the region's size). Over HTTP, as agents see it: a memory stored in
one region is recallable in the two others; every node's clock names the three origin streams; with every link
between regions cut, a region keeps accepting writes and reads, and after the heal the others catch up.
Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from infra.cluster.process import listen_port
from infra.cluster.supercluster import NatsSupercluster
from infra.log import merge_clocks
from infra.tls import TlsFiles, client_context
from producers.errors import QuorumNotMetError
from producers.http.base import CLOCK_HEADER, WAIT_FOR_HEADER
from producers.input.commands import parse_create
from producers.runtime.node import Node, NodeConfig
from producers.sync.service import format_clock, parse_clock
from producers.write.quorum import QuorumConfig
from schemas import now_ts
from tests.node_pair import trust_each_other
from tests.servers import serving

# One event loop for the module: the nodes (a module fixture) run their tasks in it between tests.
pytestmark = [pytest.mark.nats, pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]
REGIONS = ("us", "eu", "ap")
WAN_DELAY_MS = 20.0


@pytest.fixture(scope="module")
def hive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsSupercluster]:
    from tests.conftest import _require_nats_server

    _require_nats_server()
    with NatsSupercluster(store_dir=tmp_path_factory.mktemp("hive"), regions=REGIONS, servers_per_region=1,
                          wan_delay_ms=WAN_DELAY_MS) as h:
        yield h


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The nodes' data dirs: one per region, and ``us-k`` (a second node in us, for the cross-region quorum)."""
    root = tmp_path_factory.mktemp("nodes")
    trust_each_other(root, [*REGIONS, "us-k"])
    return root


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def urls(hive: NatsSupercluster, root: Path) -> AsyncIterator[dict[str, str]]:
    """Each region's node, served over HTTP: region → base URL."""
    async with contextlib.AsyncExitStack() as stack:
        out: dict[str, str] = {}
        for region in REGIONS:
            config = NodeConfig(data_dir=root / region, log_url=hive.log_url(region), node_id=f"node-{region}",
                                embedder="off", quorum=QuorumConfig(writes=1, nodes=1))
            node = await Node.open(config)
            stack.push_async_callback(node.close)
            await node.start()
            out[region] = await stack.enter_async_context(contextlib.asynccontextmanager(serving)(node))
        yield out


#: The agent every request names: it writes the memories and reads its own (private) ones back.
AGENT = {"X-Agent-Id": "agent-k"}


async def _store(client: httpx.AsyncClient, url: str, title: str) -> tuple[str, str]:
    """Store a memory; its id and the writer's clock after the write."""
    reply = await client.post(f"{url}/api/v1/memories", json={"title": title, "content": f"{title} content"})
    assert reply.status_code == 201, reply.text
    return reply.json()["id"], reply.headers[CLOCK_HEADER]


async def _recall(client: httpx.AsyncClient, url: str, text: str, *, wait_for: str | None = None) -> set[str]:
    headers = {WAIT_FOR_HEADER: wait_for} if wait_for else {}
    reply = await client.get(f"{url}/api/v1/recall", params={"context": text}, headers=headers)
    assert reply.status_code == 200, reply.text
    return {m["id"] for m in reply.json()["memories"]}


async def _recalled_within(client: httpx.AsyncClient, url: str, text: str, memory: str, seconds: float) -> bool:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            while memory not in await _recall(client, url, text):
                await asyncio.sleep(0.1)
            return True
    return False


async def test_a_memory_stored_in_one_region_is_recalled_in_the_others(urls: dict[str, str]) -> None:
    async with httpx.AsyncClient(timeout=10, headers=AGENT) as client:
        memory, clock = await _store(client, urls["us"], "pelican migration route")
        for region in ("eu", "ap"):
            # The writer's clock as Wait-For: the other region answers once its mirror of us has it.
            assert memory in await _recall(client, urls[region], "pelican migration", wait_for=clock)


async def test_every_clock_names_the_three_origin_streams(urls: dict[str, str]) -> None:
    async with httpx.AsyncClient(timeout=10, headers=AGENT) as client:
        stored = [await _store(client, urls[region], f"clock from {region}") for region in REGIONS]
        merged = merge_clocks(*(parse_clock(clock) for _id, clock in stored))
        every_write = format_clock(merged)
        wanted = {f"ai-memory_{region}" for region in REGIONS}
        for region in REGIONS:
            reply = await client.get(f"{urls[region]}/api/v1/health", headers={WAIT_FOR_HEADER: every_write})
            assert reply.status_code == 200, reply.text
            clock = parse_clock(reply.headers[CLOCK_HEADER])
            assert set(clock) == wanted and all(offset >= 1 for offset in clock.values())
        # sync/since with a vector clock, in ap: everything after the three writes but us's lists us's write.
        before_us = format_clock({**merged, "ai-memory_us": merged["ai-memory_us"] - 1})
        since = await client.get(f"{urls['ap']}/api/v1/sync/since", params={"clock": before_us})
        assert since.status_code == 200, since.text
        assert [(e["partition"], e["offset"]) for e in since.json()["events"]] == [
            ("ai-memory_us", merged["ai-memory_us"])]
        assert [m["id"] for m in since.json()["memories"]] == [stored[0][0]]
        assert since.json()["next_clock"] == merged


async def test_a_cut_region_keeps_writing_and_the_others_catch_up_after_the_heal(
        hive: NatsSupercluster, urls: dict[str, str]) -> None:
    async with httpx.AsyncClient(timeout=10, headers=AGENT) as client:
        await asyncio.to_thread(hive.cut)
        try:
            memory, clock = await _store(client, urls["us"], "storm warning harbor")  # regional: no wait on eu/ap
            assert memory in await _recall(client, urls["us"], "storm warning")
            assert not await _recalled_within(client, urls["eu"], "storm warning", memory, 2.0)
            eu_memory, _ = await _store(client, urls["eu"], "eu keeps writing too")
        finally:
            await asyncio.to_thread(hive.heal)
        for region in ("eu", "ap"):
            assert await _recalled_within(client, urls[region], "storm warning", memory, 60.0), region
        assert await _recalled_within(client, urls["us"], "eu keeps writing", eu_memory, 60.0)
        reply = await client.get(f"{urls['ap']}/api/v1/health", headers={WAIT_FOR_HEADER: clock})
        assert reply.status_code == 200


async def test_quorum_regions_waits_for_other_regions_and_fails_when_cut_off(
        hive: NatsSupercluster, urls: dict[str, str], root: Path) -> None:
    config = NodeConfig(data_dir=root / "us-k", log_url=hive.log_url("us"), node_id="node-us-k", embedder="off",
                        quorum=QuorumConfig(writes=1, nodes=1, regions=3, timeout_ms=1500))
    node = await Node.open(config)
    try:
        await node.start()
        stored = await node.service.store(parse_create({"title": "three regions", "content": "acknowledged"},
                                                       now=now_ts()), agent_id="agent-k")
        assert stored.write.quorum_acks == 1  # W counts the region's nodes; the regions were waited for too
        async with httpx.AsyncClient(timeout=10, headers=AGENT) as client:
            for region in ("eu", "ap"):  # no Wait-For: the write returned only once both regions applied it
                seen = await client.get(f"{urls[region]}/api/v1/memories/{stored.memory.id}")
                assert seen.status_code == 200, (region, seen.text)
        await asyncio.to_thread(hive.cut)
        try:
            with pytest.raises(QuorumNotMetError) as failed:
                await node.service.store(parse_create({"title": "alone", "content": "cut off"}, now=now_ts()),
                                         agent_id="agent-k")
            assert failed.value.body() == {"error": "quorum_not_met", "got": 1, "needed": 3, "reason": "timeout"}
        finally:
            await asyncio.to_thread(hive.heal)
    finally:
        await node.close()


async def test_the_launcher_starts_a_hive_over_mutual_tls(tmp_path: Path) -> None:
    """``python -m infra.cluster.local DIR --regions 2 --nodes 1 --tls --serve``: gateways, routes, clients and
    HTTP all under the hive's CA; a write over HTTPS in r1 is read in r2 with the writer's clock."""
    from tests.conftest import _require_nats_server

    _require_nats_server()
    port = listen_port()
    launcher = subprocess.Popen([sys.executable, "-m", "infra.cluster.local", str(tmp_path), "--regions", "2",
                                 "--nodes", "1", "--tls", "--serve", "--port", str(port)],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        certs = tmp_path / "nats" / "r1" / "certs"
        operator = TlsFiles(certs / "operator.pem", certs / "operator.key", tmp_path / "nats" / "certs" / "ca.pem")
        async with asyncio.timeout(120):
            while True:
                await asyncio.sleep(0.3)
                assert launcher.poll() is None, launcher.stdout.read().decode() if launcher.stdout else ""
                if not operator.key.exists():  # printed (made) after the nodes' certificates and the allowlist
                    continue
                with contextlib.suppress(httpx.TransportError, OSError):
                    async with httpx.AsyncClient(verify=client_context(operator), timeout=5) as c:
                        codes = [(await c.get(f"https://127.0.0.1:{p}/api/v1/health")).status_code
                                 for p in (port, port + 1)]
                    if codes == [200, 200]:
                        break
        async with httpx.AsyncClient(verify=client_context(operator), timeout=10, headers=AGENT) as c:
            memory, clock = await _store(c, f"https://127.0.0.1:{port}", "launched hive")
            seen = await c.get(f"https://127.0.0.1:{port + 1}/api/v1/memories/{memory}",
                               headers={WAIT_FOR_HEADER: clock})
            assert seen.status_code == 200, seen.text
            assert "ai-memory_r1" in parse_clock(seen.headers[CLOCK_HEADER])
    finally:
        launcher.terminate()
        launcher.wait(30)
    assert not any(p.is_file() and "Traceback" in p.read_text() for p in tmp_path.glob("node*.log"))


async def _seen_everywhere(client: httpx.AsyncClient, urls: dict[str, str], *clocks: str) -> None:
    """Every region's node has applied everything the given writers' clocks name."""
    every = format_clock(merge_clocks(*(parse_clock(c) for c in clocks)))
    for url in urls.values():
        reply = await client.get(f"{url}/api/v1/health", headers={WAIT_FOR_HEADER: every})
        assert reply.status_code == 200, reply.text


async def test_a_link_made_in_one_region_and_deleted_in_another_ends_the_same_everywhere(
        urls: dict[str, str]) -> None:
    async with httpx.AsyncClient(timeout=10, headers=AGENT) as client:
        (a, ca), (b, cb) = await _store(client, urls["us"], "heron nest"), await _store(client, urls["ap"], "heron egg")
        await _seen_everywhere(client, urls, ca, cb)
        link = {"source_id": a, "target_id": b, "relation": "related_to"}
        made = await client.post(f"{urls['eu']}/api/v1/links", json=link)
        assert made.status_code == 201, made.text
        await _seen_everywhere(client, urls, made.headers[CLOCK_HEADER])
        for url in urls.values():
            shown = (await client.get(f"{url}/api/v1/links/{a}")).json()["links"]
            assert [lk["target_id"] for lk in shown] == [b], url
        gone = await client.request("DELETE", f"{urls['ap']}/api/v1/links", json=link)
        assert gone.status_code == 200, gone.text
        await _seen_everywhere(client, urls, gone.headers[CLOCK_HEADER])
        for url in urls.values():
            assert (await client.get(f"{url}/api/v1/links/{a}")).json() == {"links": []}
            status = (await client.get(f"{url}/api/v1/status")).json()
            assert {"source_id": a, "target_id": b, "relation": "related_to",
                    "regions": ["ai-memory_ap", "ai-memory_eu"],
                    "held_by": {"region": "ai-memory_ap", "type": "link.deleted"}} in \
                status["read_models"]["memories"]["link_conflicts"]
