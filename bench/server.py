"""A real HTTP server for the benchmark: ``create_app(node)`` under uvicorn, in a child process.

A separate process keeps the client and the server from sharing one GIL, as in production. The child stops
cleanly when its stdin closes (so it also stops if the benchmark dies), closing the node.

    python -m bench.server --data-dir /tmp/x --port 18077     # serves until stdin closes
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx
import uvicorn

from infra.child import end_child
from infra.cluster.process import free_port
from infra.embed import EmbedderSettings
from producers.http import create_app
from producers.runtime.node import Node, NodeConfig

__all__ = ["environment", "free_port", "running_server", "wait_ready"]

# A node on mpnet opens a 438 MB graph; on a loaded 2-core machine that alone took over 30 s.
_READY_TIMEOUT = 120.0
_REPO_ROOT = Path(__file__).resolve().parents[1]


def _stop_on_stdin_eof(server: uvicorn.Server) -> None:
    sys.stdin.read()
    server.should_exit = True


async def _serve(data_dir: Path, port: int) -> None:
    # The AI_MEMORY_EMBED_* settings from the environment, as `serve` takes them: AI_MEMORY_EMBED_MODEL=mpnet
    # runs a benchmark's node on that model without a flag of its own.
    node = await Node.open(NodeConfig(data_dir=data_dir, embedding=EmbedderSettings.from_env()))
    try:
        await node.start()
        config = uvicorn.Config(create_app(node), host="127.0.0.1", port=port, log_level="warning",
                                lifespan="off", access_log=False)
        server = uvicorn.Server(config)
        threading.Thread(target=_stop_on_stdin_eof, args=(server,), daemon=True).start()
        await server.serve()
    finally:
        await node.close()


def wait_ready(proc: subprocess.Popen[bytes], base_url: str, *, timeout: float = _READY_TIMEOUT,
               what: str = "benchmark server") -> None:
    """Return once ``base_url`` answers its health check; raise when ``proc`` exits first or ``timeout`` runs out
    (``what`` names the process in the message, e.g. where its log is)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            msg = f"{what} exited with {proc.returncode} before it was ready"
            raise RuntimeError(msg)
        try:
            if httpx.get(f"{base_url}/api/v1/health", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    msg = f"{what} not ready after {timeout:.0f}s"
    raise RuntimeError(msg)


@contextmanager
def environment(values: Mapping[str, str]) -> Iterator[None]:
    """Set ``values`` in this process's environment (a child server inherits them), restoring them on exit."""
    previous = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextmanager
def running_server(data_dir: Path) -> Iterator[str]:
    """Start the server on a free loopback port; yield its base URL; stop it on exit."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "bench.server", "--data-dir", str(data_dir), "--port", str(port)],
                            stdin=subprocess.PIPE, cwd=_REPO_ROOT)
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(proc, base_url)
        yield base_url
    finally:
        end_child(proc, timeout=15)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    asyncio.run(_serve(args.data_dir, args.port))


if __name__ == "__main__":
    main()
