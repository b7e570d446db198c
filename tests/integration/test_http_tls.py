"""The HTTP API over TLS with the original's fingerprint allowlist, on a real uvicorn server on loopback: a
listed client certificate is served; one signed by the same CA but not listed gets 403; no certificate, or one
from another CA, fails the handshake. Also ``ai-memory certs`` and the ``serve`` option checks."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from infra.cluster.process import free_port
from infra.tls import (
    TlsFiles,
    client_context,
    fingerprint,
    make_ca,
    make_node_cert,
    open_or_make_ca,
    parse_allowlist,
)
from producers.cli.certs import make_dev_certs
from producers.cli.main import main as cli
from producers.errors import ValidationError
from producers.runtime.mtls import HttpTls
from producers.runtime.node import Node
from tests.servers import serving


@dataclass
class Served:
    url: str
    certs: Path
    server_ca: Path


@pytest.fixture
async def mtls(node: Node, tmp_path: Path) -> AsyncIterator[Served]:
    certs = tmp_path / "certs"
    make_dev_certs(certs, ["server", "peer"])
    # A client signed by the same CA, made after the allowlist: the CA would accept it, the allowlist does not.
    (certs / "late").mkdir()
    make_node_cert(certs / "late", "late", open_or_make_ca(certs))
    tls = HttpTls.load(str(certs / "server.pem"), str(certs / "server.key"), str(certs / "allowlist"),
                       str(certs / "ca.pem"))
    assert tls is not None and tls.allowlist == parse_allowlist((certs / "allowlist").read_text())
    async for url in serving(node, tls=tls):
        yield Served(url, certs, certs / "ca.pem")


def _client(served: Served, files: TlsFiles | None) -> httpx.AsyncClient:
    ctx = client_context(files) if files else ssl.create_default_context(cafile=str(served.server_ca))
    return httpx.AsyncClient(base_url=served.url, verify=ctx, timeout=10)


async def test_a_listed_certificate_is_served(mtls: Served) -> None:
    files = TlsFiles(mtls.certs / "peer.pem", mtls.certs / "peer.key", mtls.server_ca)
    async with _client(mtls, files) as c:
        r = await c.post("/api/v1/memories", json={"title": "over https", "content": "mutual"})
        assert r.status_code == 201, r.text
        assert (await c.get("/api/v1/health")).status_code == 200


async def test_an_unlisted_certificate_of_the_same_ca_gets_403(mtls: Served) -> None:
    late = mtls.certs / "late"
    files = TlsFiles(late / "late.pem", late / "late.key", mtls.server_ca)
    async with _client(mtls, files) as c:
        for method, path in (("GET", "/api/v1/health"), ("POST", "/api/v1/memories"), ("POST", "/mcp")):
            r = await c.request(method, path, json={"title": "t", "content": "c"})
            assert r.status_code == 403, (path, r.text)
            digest = fingerprint((late / "late.pem").read_bytes())
            assert r.json() == {"error": f"client certificate sha256:{digest} is not on the allowlist"}


async def test_no_certificate_or_a_foreign_ca_fails_the_handshake(mtls: Served, tmp_path: Path) -> None:
    async with _client(mtls, None) as c:
        with pytest.raises(httpx.TransportError):
            await c.get("/api/v1/health")
    stranger = make_node_cert(tmp_path / "other", "intruder", make_ca(tmp_path / "other"))
    async with _client(mtls, TlsFiles(stranger.cert, stranger.key, mtls.server_ca)) as c:
        with pytest.raises(httpx.TransportError):
            await c.get("/api/v1/health")


async def test_https_without_client_certificates(node: Node, tmp_path: Path) -> None:
    files = make_node_cert(tmp_path, "server", make_ca(tmp_path))
    tls = HttpTls.load(str(files.cert), str(files.key), None, None)
    assert tls is not None and tls.allowlist is None
    async for url in serving(node, tls=tls):
        ctx = ssl.create_default_context(cafile=str(files.ca))
        async with httpx.AsyncClient(base_url=url, verify=ctx, timeout=10) as c:
            assert (await c.get("/api/v1/health")).status_code == 200


def test_serve_options_are_checked(tmp_path: Path) -> None:
    files = make_node_cert(tmp_path, "s", make_ca(tmp_path))
    assert HttpTls.load(None, None, None, None) is None
    bad = tmp_path / "bad-allowlist"
    bad.write_text("sha256:12 34\n")
    cases = [(str(files.cert), None, None, None), (None, None, str(bad), str(files.ca)),
             (str(files.cert), str(files.key), str(bad), None), (str(files.cert), str(files.key), str(bad),
                                                                  str(files.ca)),
             (str(files.cert), str(tmp_path / "missing.key"), None, None),
             (str(files.cert), str(files.key), str(tmp_path / "missing"), str(files.ca))]
    for cert, key, allowlist, ca in cases:
        with pytest.raises(ValidationError):
            HttpTls.load(cert, key, allowlist, ca)


def test_certs_verb_reuses_its_ca_and_lists_every_certificate(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                                             ) -> None:
    assert cli(["certs", str(tmp_path), "--name", "n1", "--json"]) == 0
    ca = (tmp_path / "ca.pem").read_bytes()
    assert cli(["certs", str(tmp_path), "--name", "n2"]) == 0
    assert (tmp_path / "ca.pem").read_bytes() == ca, "a second run keeps the CA, so n1 stays trusted"
    listed = parse_allowlist((tmp_path / "allowlist").read_text())
    assert listed == {fingerprint((tmp_path / f"{n}.pem").read_bytes()) for n in ("n1", "n2")}
    assert cli(["certs", str(tmp_path), "--name", "../evil"]) == 2
    assert "sha256:" in capsys.readouterr().out


def _free_pair() -> int:
    """A port whose successor is free too (the launcher gives node N the port + N - 1)."""
    import socket

    for _ in range(50):
        port = free_port()
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
            return port
    raise RuntimeError("no two consecutive free ports")


async def test_the_local_launcher_runs_nodes_over_mutual_tls(tmp_path: Path) -> None:
    """``python -m infra.cluster.local DIR --tls --serve``: three NATS servers and two ai-memory nodes, HTTPS with
    the allowlist on both; the operator's certificate writes on one and reads on the other, a certificate of
    the same CA that is not listed gets 403."""
    import subprocess
    import sys

    from tests.conftest import _require_nats_server

    _require_nats_server()
    port = _free_pair()
    launcher = subprocess.Popen([sys.executable, "-m", "infra.cluster.local", str(tmp_path), "--nodes", "3",
                                 "--ai-nodes", "2", "--quorum", "2", "--tls", "--serve", "--port", str(port)],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        certs = tmp_path / "nats" / "certs"
        operator = TlsFiles(certs / "operator.pem", certs / "operator.key", certs / "ca.pem")
        for _ in range(300):  # the servers and both nodes start (a minute at most on a loaded machine)
            await asyncio.sleep(0.2)
            assert launcher.poll() is None, launcher.stdout.read().decode() if launcher.stdout else ""
            if not operator.cert.exists():
                continue
            try:
                async with httpx.AsyncClient(verify=client_context(operator), timeout=5) as c:
                    codes = [(await c.get(f"https://127.0.0.1:{p}/api/v1/health")).status_code
                             for p in (port, port + 1)]
                if codes == [200, 200]:
                    break
            except httpx.TransportError:
                continue
        else:
            pytest.fail("the launched nodes never answered over HTTPS")
        async with httpx.AsyncClient(verify=client_context(operator), timeout=10) as c:
            stored = await c.post(f"https://127.0.0.1:{port}/api/v1/memories", headers={"x-agent-id": "op"},
                                  json={"title": "over mtls", "content": "launched"})
            assert stored.status_code == 201, stored.text
            assert stored.json()["quorum_acks"] == 2
            seen = await c.get(f"https://127.0.0.1:{port + 1}/api/v1/memories/{stored.json()['id']}",
                               headers={"x-agent-id": "op"})
            assert seen.status_code == 200
        (tmp_path / "x").mkdir()
        unlisted = make_node_cert(tmp_path / "x", "unlisted", open_or_make_ca(certs))
        async with httpx.AsyncClient(verify=client_context(unlisted), timeout=10) as c:
            assert (await c.get(f"https://127.0.0.1:{port + 1}/api/v1/health")).status_code == 403
    finally:
        launcher.terminate()
        launcher.wait(30)
    assert not any(p.is_file() and "Traceback" in p.read_text() for p in tmp_path.glob("node*.log"))
