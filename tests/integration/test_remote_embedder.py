"""A node whose embedder is another ``ai-memory serve`` process (real servers, real HTTP on loopback): the
service is killed during a write load and comes back (every write acknowledged, recall in keyword mode while it
is down and hybrid again after, the missing vectors arrive by themselves); a wrong API key is a clear error in
health, not a crash; a service answering another dimension than the node's is refused and counted; memories
stored with the embedder off get their vectors from the service through ``ai-memory reembed --missing``."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.servers import ServerProcess

KEY = "fleet-key"
# Short cooldown and catch-up interval: the test waits for both.
FAST = {
    "AI_MEMORY_EMBED_BREAKER_COOLDOWN": "0.5",
    "AI_MEMORY_EMBED_CATCH_UP_SECS": "0.5",
    "AI_MEMORY_EMBED_TIMEOUT": "10",
}

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("remote-embedder")
    (path / "key").write_text(KEY + "\n")
    (path / "wrong-key").write_text("not-the-key\n")
    return path


@pytest.fixture(scope="module")
def service(root: Path) -> Iterator[ServerProcess]:
    """The node that embeds for the others (its local MiniLM), behind an API key."""
    server = ServerProcess(root / "service", extra=["--api-key", KEY]).start(timeout=90)
    yield server
    server.stop()


def client_node(root: Path, name: str, service: ServerProcess, *extra: str, key: str = "key") -> ServerProcess:
    return ServerProcess(
        root / name,
        extra=["--embedder", f"{service.url}/v1", "--embed-api-key-file", str(root / key), *extra],
        env=FAST,
    ).start(timeout=60)


def _get(server: ServerProcess, path: str) -> Any:
    r = httpx.get(f"{server.url}/api/v1/{path}", timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


#: The agent that stores the notes and recalls them (its own, private).
AGENT = {"X-Agent-Id": "embed-test"}


def _store(server: ServerProcess, i: int) -> httpx.Response:
    return httpx.post(
        f"{server.url}/api/v1/memories",
        timeout=30, headers=AGENT,
        json={"title": f"note {i}", "content": f"deploy step {i}: run the migrations first"},
    )


def _recall(server: ServerProcess) -> Any:
    r = httpx.post(f"{server.url}/api/v1/recall", json={"context": "what happens before deploying"}, timeout=30,
                   headers=AGENT)
    assert r.status_code == 200, r.text
    return r.json()


def _wait(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.2)


def test_the_service_dies_during_writes_and_the_vectors_follow_when_it_is_back(
    root: Path, service: ServerProcess
) -> None:
    node = client_node(root, "writer", service)
    try:
        health = _get(node, "health")
        assert health["embedder_ready"] and health["embedder_device"] == "remote" and health["dim"] == 384
        statuses: list[int] = []
        acknowledged = threading.Event()

        def load() -> None:
            for i in range(30):
                try:
                    statuses.append(_store(node, i).status_code)
                except httpx.HTTPError:
                    statuses.append(0)  # the node itself did not answer: the assertion below says so
                if i == 4:
                    acknowledged.set()
                time.sleep(0.05)

        writer = threading.Thread(target=load)
        writer.start()
        assert acknowledged.wait(60)
        service.kill()
        _wait(lambda: len(statuses) >= 15, 60, "writes while the service is down")
        down = _recall(node)
        assert down["mode"] == "keyword" and "embedding service" in down["meta"]["semantic_unavailable"]
        # The circuit may be half-open at this moment (one probe allowed): the error stays until a call succeeds.
        health = _get(node, "health")
        assert "cannot reach" in health["embedder_error"] and health["embedder_service"]["circuit_opened_total"] >= 1
        service.start(timeout=90)
        writer.join(120)
        assert statuses == [201] * 30, "every write is acknowledged, the service up or down"

        def all_vectors() -> bool:
            index = _get(node, "stats")["vector_index"]
            return bool(index["sqlite_vectors"] == 30 and index["vectors"] == 30)

        _wait(all_vectors, 60, "the missing vectors after the service came back")
        stats = _get(node, "stats")["embedder"]
        assert stats["embedder_service"]["circuit_opened_total"] >= 1 and stats["embedder_ready"]
        assert _recall(node)["mode"] == "hybrid"
    finally:
        node.stop()


def test_a_wrong_key_is_a_clear_error_in_health_not_a_crash(root: Path, service: ServerProcess) -> None:
    node = client_node(root, "bad-key-node", service, key="wrong-key")
    try:
        assert _store(node, 1).status_code == 201, "the memory is stored without its vector"
        health = _get(node, "health")
        assert "refused the API key (401" in health["embedder_error"] and health["status"] == "ok"
        assert _recall(node)["mode"] == "keyword"
        assert node.proc is not None and node.proc.poll() is None
    finally:
        node.stop()


def test_a_service_answering_another_dimension_is_refused_and_counted(root: Path, service: ServerProcess) -> None:
    node = client_node(root, "wide", service, "--embed-dim", "768")
    try:
        for i in range(3):
            assert _store(node, i).status_code == 201
        stats = _get(node, "stats")
        service_stats = stats["embedder"]["embedder_service"]
        assert service_stats["dim_refusals"] >= 3 and service_stats["circuit"] == "closed"
        assert "384-dimension vectors" in stats["embedder"]["embedder_error"]
        assert stats["vector_index"]["vectors"] == 0 and stats["vector_index"]["dim"] == 768
        assert stats["total"] == 3
    finally:
        node.stop()


def test_memories_stored_without_a_model_get_vectors_from_the_service_with_reembed_missing(
    root: Path, service: ServerProcess
) -> None:
    data_dir = root / "late"
    node = ServerProcess(data_dir, env={"AI_MEMORY_EMBEDDER": "off"}).start(timeout=60)
    try:
        for i in range(3):
            assert _store(node, i).status_code == 201
        assert _get(node, "stats")["vector_index"]["vectors"] == 0
    finally:
        node.stop()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "producers.cli.main",
            "reembed",
            "--missing",
            "--json",
            "--data-dir",
            str(data_dir),
            "--embedder",
            f"{service.url}/v1",
            "--embed-api-key-file",
            str(root / "key"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout) == {"embedded": 3, "model": "all-MiniLM-L6-v2", "only_missing": True}
    node = client_node(root, "late", service)
    try:
        _wait(lambda: _get(node, "stats")["vector_index"]["vectors"] == 3, 30, "the index to load the vectors")
        assert _recall(node)["mode"] == "hybrid"
    finally:
        node.stop()
