"""The issue's SIGSTOP fault test, on real processes: three ``ai-memory serve`` nodes on a real 3-node NATS
JetStream cluster (stream replicas = 3). Two of the three ai-memory processes are frozen with SIGSTOP (their
nats-servers keep running): a write with W = 2 on the third answers 503 quorum_not_met within the quorum timeout,
and with W = 1 it succeeds. After SIGCONT every node converges, and every node's read model equals a rebuild from
the log, compared by a hash of its memories. Bounded in time: every wait has a timeout.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from infra.cluster import NatsCluster
from infra.cluster.local import prepare_nodes
from infra.log import LogConfig, open_log
from producers.http.base import CLOCK_HEADER, WAIT_FOR_HEADER
from producers.memory.model_hash import memories_hash
from producers.sync.service import format_clock, parse_clock
from projectors import SQLiteReadModel
from projectors.rebuild import rebuild_sqlite
from schemas import Keyring
from tests.servers import ServerProcess

QUORUM_TIMEOUT_MS = 1500
CHILD_ENV = {"AI_MEMORY_EMBEDDER": "off", "AI_MEMORY_AGENT_ID": ""}


def _serve(data_dir: Path, log_url: str, *, writes: int) -> ServerProcess:
    return ServerProcess(data_dir, env=CHILD_ENV, extra=[
        "--log", log_url, "--replicas", "3", "--cluster-size", "3", "--quorum-writes", str(writes),
        "--quorum-timeout-ms", str(QUORUM_TIMEOUT_MS)])


@pytest.fixture
def stream() -> str:
    return f"sigstop-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def servers(tmp_path: Path, nats_cluster: NatsCluster, stream: str) -> Iterator[list[ServerProcess]]:
    """Three nodes that trust each other's keys, W = 2 of N = 3; never left frozen, always stopped."""
    log_url = f"{nats_cluster.url}/{stream}"
    procs = [_serve(d, log_url, writes=2) for d in prepare_nodes(tmp_path / "nodes", 3)]
    try:
        procs[0].start(timeout=30)  # the first creates the stream
        for p in procs[1:]:
            p.start(timeout=30)
        yield procs
    finally:
        for p in procs:
            if p.proc is not None and p.proc.poll() is None:
                os.kill(p.proc.pid, signal.SIGCONT)
            p.stop()


def _freeze(proc: ServerProcess, sig: signal.Signals) -> None:
    assert proc.proc is not None and proc.proc.poll() is None
    os.kill(proc.proc.pid, sig)


def _store(url: str, title: str) -> httpx.Response:
    return httpx.post(f"{url}/api/v1/memories", json={"title": title, "content": f"content of {title}"},
                      headers={"X-Agent-Id": "agent-1"}, timeout=30)


def _caught_up(url: str, clock: dict[str, int], *, timeout: float = 30.0) -> None:
    """Wait (bounded) until the node at ``url`` has applied ``clock``: a read that names it answers 200."""
    deadline = time.monotonic() + timeout
    while True:
        r = httpx.get(f"{url}/api/v1/health", headers={WAIT_FOR_HEADER: format_clock(clock)}, timeout=10)
        if r.status_code == 200:
            position = parse_clock(r.headers[CLOCK_HEADER])
            assert all(position.get(p, -1) >= o for p, o in clock.items())
            return
        assert time.monotonic() < deadline, f"{url} did not reach {clock}: {r.status_code} {r.text}"
        time.sleep(0.1)


async def _rebuilt_hash(log_url: str, stream: str, keys: Path, work: Path) -> str:
    log = await open_log(LogConfig(url=log_url, data_dir=work, stream=stream, replicas=3))
    try:
        # refuse_breaks: a leader stopped mid-stream must not leave what looks like a cut or moved event
        await rebuild_sqlite(log, Keyring.from_dirs(keys), work / "rebuilt.db", refuse_breaks=True)
    finally:
        await log.close()
    model = SQLiteReadModel(work / "rebuilt.db")
    try:
        return memories_hash(model)
    finally:
        model.close()


def _node_hash(data_dir: Path) -> str:
    model = SQLiteReadModel(data_dir / "readmodel.db")
    try:
        return memories_hash(model)
    finally:
        model.close()


async def test_sigstop_two_of_three(servers: list[ServerProcess], nats_cluster: NatsCluster, stream: str,
                                    tmp_path: Path) -> None:
    a, b, c = servers
    started = time.monotonic()
    warm = _store(a.url, "before the freeze")
    assert warm.status_code == 201 and warm.json()["quorum_acks"] >= 2, warm.text
    for node in servers:
        _caught_up(node.url, warm.json()["log_clock"])

    _freeze(b, signal.SIGSTOP)
    _freeze(c, signal.SIGSTOP)
    # W = 2: only the writer confirms, so the write answers 503 within the quorum timeout (not hanging).
    t0 = time.monotonic()
    refused = _store(a.url, "refused at W=2")
    elapsed = time.monotonic() - t0
    assert refused.status_code == 503, refused.text
    assert refused.json() == {"error": "quorum_not_met", "got": 1, "needed": 2, "reason": "timeout"}
    assert refused.headers["retry-after"] == "2"
    assert QUORUM_TIMEOUT_MS / 1000 - 0.1 <= elapsed < QUORUM_TIMEOUT_MS / 1000 + 2.0
    # W = 1 on the same node (restarted with --quorum-writes 1; the other two are still frozen): succeeds.
    a.stop()
    a1 = _serve(a.data_dir, f"{nats_cluster.url}/{stream}", writes=1).start(timeout=30)
    servers[0] = a1  # so the fixture stops it
    alone = _store(a1.url, "accepted at W=1")
    assert alone.status_code == 201, alone.text
    final = alone.json()["log_clock"]

    _freeze(b, signal.SIGCONT)
    _freeze(c, signal.SIGCONT)
    for node in (a1, b, c):
        _caught_up(node.url, final)
        listed = httpx.get(f"{node.url}/api/v1/memories", headers={"X-Agent-Id": "agent-1"}, timeout=10).json()
        # The refused write stayed in the log: every node has it, as it has the other two.
        assert sorted(m["title"] for m in listed["memories"]) == ["accepted at W=1", "before the freeze",
                                                                  "refused at W=2"]
    for node in (a1, b, c):
        node.stop()  # stopped, so each read model is read as its node left it
    rebuilt = await _rebuilt_hash(f"{nats_cluster.url}/{stream}", stream, a.data_dir / "keys", tmp_path / "rebuild")
    assert [_node_hash(node.data_dir) for node in (a1, b, c)] == [rebuilt] * 3
    assert time.monotonic() - started < 60
