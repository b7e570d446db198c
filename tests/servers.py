"""Start real ``ai-memory serve`` processes for integration tests, or a node's app under uvicorn in this one."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from infra.cluster.process import free_port

if TYPE_CHECKING:
    from producers.runtime.mtls import HttpTls
    from producers.runtime.node import Node

__all__ = ["ServerProcess", "free_port", "serving"]


async def serving(node: Node, *, api_key: str | None = None, tls: HttpTls | None = None) -> AsyncIterator[str]:
    """``create_app(node)`` on a real uvicorn server on a free loopback port, in this event loop: yields its base
    URL (https with ``tls``), then stops it."""
    from producers.http import create_app
    from producers.runtime.serve import http_server

    port = free_port()
    server = http_server(create_app(node, api_key=api_key), host="127.0.0.1", port=port, tls=tls)
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(250):
            if server.started:
                break
            await asyncio.sleep(0.02)
        assert server.started, "uvicorn did not start"
        yield f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


class ServerProcess:
    def __init__(self, data_dir: Path, *, extra: list[str] | None = None, env: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._extra = extra or []
        self._env = env or {}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 20.0) -> ServerProcess:
        cmd = [sys.executable, "-m", "producers.cli.main", "serve", "--port", str(self.port),
               "--data-dir", str(self.data_dir), *self._extra]
        log = open(self.data_dir.parent / f"server-{self.port}.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **self._env})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                msg = f"server exited with {self.proc.returncode}; see {log.name}"
                raise RuntimeError(msg)
            try:
                if httpx.get(f"{self.url}/api/v1/health", timeout=0.5).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.05)
        self.stop()
        msg = f"server did not answer within {timeout}s"
        raise RuntimeError(msg)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
