"""kill -9 in the middle of a stream of writes: every acknowledged write survives, and the read model
equals a rebuild from the log."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx

from producers.cli.main import main as cli
from projectors import SQLiteReadModel
from tests.servers import ServerProcess

#: The agent the writers write as, and read back as.
WRITER = {"X-Agent-Id": "crash-writer"}


def _writer(url: str, acked: list[str], stop: threading.Event, worker: int) -> None:
    with httpx.Client(base_url=url, timeout=5, headers=WRITER) as client:
        i = 0
        while not stop.is_set():
            try:
                r = client.post("/api/v1/memories", json={"title": f"w{worker}-{i}", "content": f"payload {i}"})
            except httpx.TransportError:
                return
            if r.status_code == 201:
                acked.append(r.json()["id"])
            i += 1


def test_kill_9_loses_nothing_acknowledged(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = ServerProcess(data).start()
    acked: list[str] = []
    stop = threading.Event()
    writers = [threading.Thread(target=_writer, args=(server.url, acked, stop, w)) for w in range(3)]
    for t in writers:
        t.start()
    time.sleep(1.5)
    server.kill()
    stop.set()
    for t in writers:
        t.join(10)
    assert len(acked) > 20, "the writers should have been acknowledged many times before the kill"

    server = ServerProcess(data).start()
    with httpx.Client(base_url=server.url, headers=WRITER) as client:  # reads its own (private) memories
        for memory_id in acked:
            assert client.get(f"/api/v1/memories/{memory_id}").status_code == 200, memory_id
        total = client.get("/api/v1/stats").json()["total"]
    server.stop()
    assert total >= len(acked)

    assert cli(["rebuild", "--data-dir", str(data), "--into", str(tmp_path / "rebuilt.db"), "--quiet"]) == 0
    live, rebuilt = SQLiteReadModel(data / "readmodel.db"), SQLiteReadModel(tmp_path / "rebuilt.db")
    assert rebuilt.queries.all_memories() == live.queries.all_memories()
    assert rebuilt.position() == live.position()
    live.close()
    rebuilt.close()
