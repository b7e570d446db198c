"""A TCP proxy that adds latency, for measuring an embedding service across a slow link: every byte is held
``delay_ms / 2`` on its way in each direction, as a link with that round-trip time would (a delay line, not a
sleep per chunk: chunks keep their spacing and order, and bandwidth is not limited).

    python -m bench.delay_proxy --listen 18100 --target 127.0.0.1:9077 --delay-ms 50   # until killed

A process of its own, so the benchmark's client, the proxy and the serving node share no event loop.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from pathlib import Path

from infra.cluster.process import ManagedProcess, accepts, free_port

__all__ = ["DelayProxy", "main", "serve_proxy"]

_CHUNK = 1 << 16


async def _delay_line(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    """Copy ``reader`` to ``writer``, each chunk leaving ``delay`` seconds after it arrived."""
    line: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def receive() -> None:
        while data := await reader.read(_CHUNK):
            line.put_nowait((time.monotonic() + delay, data))
        line.put_nowait((time.monotonic() + delay, b""))

    receiving = asyncio.create_task(receive())
    try:
        while True:
            due, data = await line.get()
            if (wait := due - time.monotonic()) > 0:
                await asyncio.sleep(wait)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    finally:
        receiving.cancel()
        with contextlib.suppress(Exception):
            writer.close()


async def _connection(
    client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter, host: str, port: int, delay: float
) -> None:
    try:
        server_r, server_w = await asyncio.open_connection(host, port)
    except OSError:
        client_w.close()
        return
    with contextlib.suppress(ConnectionError, asyncio.CancelledError):
        await asyncio.gather(_delay_line(client_r, server_w, delay), _delay_line(server_r, client_w, delay))


async def serve_proxy(listen: int, host: str, port: int, delay_ms: float) -> None:
    one_way = delay_ms / 2000

    async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await _connection(r, w, host, port, one_way)

    server = await asyncio.start_server(handle, "127.0.0.1", listen)
    async with server:
        await server.serve_forever()


class DelayProxy(ManagedProcess):
    """The proxy as a child process: ``url_of(path)`` is the target reached through it."""

    def __init__(self, target: str, delay_ms: float, log_dir: Path) -> None:
        self.target = target
        self.delay_ms = delay_ms
        self.port = free_port()
        self._log_path = log_dir / f"delay-proxy-{self.port}.log"

    def start(self, *, timeout: float = 10.0) -> None:
        self._launch(
            [
                sys.executable,
                "-m",
                "bench.delay_proxy",
                "--listen",
                str(self.port),
                "--target",
                self.target,
                "--delay-ms",
                str(self.delay_ms),
            ]
        )
        deadline = time.monotonic() + timeout
        while not accepts(self.port):
            if not self.running or time.monotonic() > deadline:
                msg = f"the delay proxy did not start: {self.log_tail()}"
                raise RuntimeError(msg)
            time.sleep(0.05)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.delay_proxy", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--listen", type=int, required=True, help="port on 127.0.0.1")
    parser.add_argument("--target", required=True, help="host:port to forward to")
    parser.add_argument("--delay-ms", type=float, required=True, help="round-trip time added (half each way)")
    args = parser.parse_args(argv)
    host, _, port = args.target.rpartition(":")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_proxy(args.listen, host, int(port), args.delay_ms))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
