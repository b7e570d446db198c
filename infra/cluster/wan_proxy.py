"""A TCP proxy that adds latency and can cut the link: a simulated WAN on loopback. Every byte is held
``delay_ms / 2`` on its way in each direction, as a link with that round-trip time would (a delay line, not a
sleep per chunk: chunks keep their spacing and order, and bandwidth is not limited).

    python -m infra.cluster.wan_proxy --route 18100=127.0.0.1:9077 [--route ...] --delay-ms 50   # until killed

One process may carry several routes (a region's gateways). ``SIGUSR1`` cuts every route: open connections are
closed and new ones are closed as soon as they arrive, as a severed link looks to both ends once their pings go
unanswered; ``SIGUSR2`` heals. The state is written to ``--state`` (``cut`` or ``open``) once it holds, so a
controller knows when the cut is real. Used by the embedder benchmark (a slow link to an embedding service)
and by the regional hive (gateways between regions).

A process of its own, so the client, the proxy and the server share no event loop.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from infra.cluster.process import ManagedProcess, accepts, listen_port

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


class _Link:
    """The proxy's connections and whether the link is cut."""

    def __init__(self, delay: float, state_file: Path | None) -> None:
        self.delay = delay
        self.cut = False
        self._state_file = state_file
        self._open: set[asyncio.Future[tuple[None, None]]] = set()

    def set_cut(self, cut: bool) -> None:
        self.cut = cut
        if cut:
            for task in list(self._open):
                task.cancel()
        if self._state_file is not None:
            self._state_file.write_text("cut\n" if cut else "open\n")

    async def connect(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter, host: str,
                      port: int) -> None:
        if self.cut:
            client_w.close()
            return
        try:
            server_r, server_w = await asyncio.open_connection(host, port)
        except OSError:
            client_w.close()
            return
        task = asyncio.ensure_future(asyncio.gather(_delay_line(client_r, server_w, self.delay),
                                                    _delay_line(server_r, client_w, self.delay)))
        self._open.add(task)
        try:
            with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                await task
        finally:
            self._open.discard(task)
            for writer in (client_w, server_w):
                with contextlib.suppress(Exception):
                    writer.close()


async def serve_proxy(routes: Sequence[tuple[int, str, int]], delay_ms: float, state_file: Path | None = None) -> None:
    """Forward each ``(listen port, host, port)`` with ``delay_ms`` round trip until cancelled."""
    link = _Link(delay_ms / 2000, state_file)
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGUSR1, link.set_cut, True)
    loop.add_signal_handler(signal.SIGUSR2, link.set_cut, False)
    servers = []
    for listen, host, port in routes:

        async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter, host: str = host, port: int = port) -> None:
            await link.connect(r, w, host, port)

        servers.append(await asyncio.start_server(handle, "127.0.0.1", listen))
    link.set_cut(False)
    await asyncio.gather(*(server.serve_forever() for server in servers))


class DelayProxy(ManagedProcess):
    """The proxy as a child process, one route per target: ``ports[i]`` reaches ``targets[i]`` (``port`` is the
    first). :meth:`cut` and :meth:`heal` return once the proxy has done it."""

    def __init__(self, target: str | Sequence[str], delay_ms: float, log_dir: Path) -> None:
        self.targets = [target] if isinstance(target, str) else list(target)
        self.delay_ms = delay_ms
        self.ports = [listen_port() for _ in self.targets]
        self.port = self.ports[0]
        self._log_path = log_dir / f"delay-proxy-{self.port}.log"
        self._state = log_dir / f"delay-proxy-{self.port}.state"

    def start(self, *, timeout: float = 10.0) -> None:
        routes = [arg for port, target in zip(self.ports, self.targets, strict=True)
                  for arg in ("--route", f"{port}={target}")]
        self._state.unlink(missing_ok=True)
        self._launch([sys.executable, "-m", "infra.cluster.wan_proxy", *routes, "--delay-ms", str(self.delay_ms),
                      "--state", str(self._state)])
        self._wait_for(lambda: all(accepts(p) for p in self.ports) and self._state.exists(), timeout, "start")

    def cut(self, *, timeout: float = 5.0) -> None:
        self._signal(signal.SIGUSR1, "cut", timeout)

    def heal(self, *, timeout: float = 5.0) -> None:
        self._signal(signal.SIGUSR2, "open", timeout)

    @property
    def pid(self) -> int | None:
        """The proxy's process id (``kill -USR1`` cuts, ``kill -USR2`` heals), None when not running."""
        return self._process.pid if self.running and self._process is not None else None

    @property
    def state_file(self) -> Path:
        """Where the proxy writes ``cut`` or ``open`` once that holds."""
        return self._state

    @property
    def is_cut(self) -> bool:
        return self._read_state() == "cut"

    def _signal(self, signum: int, state: str, timeout: float) -> None:
        if self._process is None:
            raise RuntimeError("the delay proxy is not running")
        self._process.send_signal(signum)
        self._wait_for(lambda: self._read_state() == state, timeout, state)

    def _read_state(self) -> str:
        try:
            return self._state.read_text().strip()
        except OSError:
            return ""

    def _wait_for(self, done: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            if not self.running or time.monotonic() > deadline:
                msg = f"the delay proxy did not {what}: {self.log_tail()}"
                raise RuntimeError(msg)
            time.sleep(0.02)


def _route(text: str) -> tuple[int, str, int]:
    listen, _, target = text.partition("=")
    host, _, port = target.rpartition(":")
    return int(listen), host, int(port)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m infra.cluster.wan_proxy", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--route", type=_route, action="append", default=[], metavar="LISTEN=HOST:PORT",
                        help="forward 127.0.0.1:LISTEN to HOST:PORT (repeatable)")
    parser.add_argument("--listen", type=int, help="one route's listening port (with --target)")
    parser.add_argument("--target", help="one route's host:port (with --listen)")
    parser.add_argument("--delay-ms", type=float, required=True, help="round-trip time added (half each way)")
    parser.add_argument("--state", type=Path, default=None, help="file to write 'cut' or 'open' to")
    args = parser.parse_args(argv)
    routes = list(args.route)
    if args.listen is not None and args.target:
        routes.append(_route(f"{args.listen}={args.target}"))
    if not routes:
        parser.error("give at least one --route (or --listen with --target)")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_proxy(routes, args.delay_ms, args.state))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
