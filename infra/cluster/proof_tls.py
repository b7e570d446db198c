"""The proof's three encryption legs, each positive (a certificate from the hive's CA works) and negative (none,
or one from another CA, is refused): agent → node HTTPS with the client-certificate allowlist, node → NATS
client TLS, and NATS routes and gateways (a server that presents the hive CA's certificate joins a region's
cluster and the gateway mesh; one that presents a foreign CA's cannot, shown by messages that do, or do not,
cross). The joining servers run without JetStream, so they never enter the hive's Raft groups.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import httpx
import nats
from nats.aio.client import Client as NatsClient

from infra.cluster.hive_file import HiveFile
from infra.cluster.nats_server import NatsServer, tls_block
from infra.cluster.process import HOST, listen_port
from infra.cluster.proof_api import Outcome
from infra.tls import CertificateAuthority, TlsFiles, client_context, make_ca, make_node_cert

__all__ = ["check_http_tls", "check_nats_client_tls", "check_routes_and_gateways"]

_CROSS_S = 8.0  # how long a message may take to cross a new route or gateway before it counts as not crossing


class Certs:
    """The certificates the legs present: the hive's (``good``, not on the HTTP allowlist), a foreign CA's, and
    the operator's (allowlisted), all made under ``work``."""

    def __init__(self, hive: HiveFile, work: Path) -> None:
        assert hive.tls is not None
        work.mkdir(parents=True, exist_ok=True)
        self.hive_ca = CertificateAuthority(Path(hive.tls.ca), Path(hive.tls.ca_key))
        (work / "hive").mkdir(exist_ok=True)
        self.good = make_node_cert(work / "hive", "proof-hive", self.hive_ca)
        foreign = make_ca(work / "foreign", name="a foreign CA")
        self.foreign = make_node_cert(work / "foreign", "proof-foreign", foreign)
        self.operator = TlsFiles(Path(hive.tls.operator_cert), Path(hive.tls.operator_key), Path(hive.tls.ca))

    def presenting(self, files: TlsFiles | None) -> ssl.SSLContext:
        """A client context trusting the hive's CA (so the server is checked) and presenting ``files``."""
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(self.hive_ca.cert_path))
        if files is not None:
            ctx.load_cert_chain(str(files.cert), str(files.key))
        return ctx


def _http_answer(url: str, ctx: ssl.SSLContext) -> str:
    """``200``, ``403`` ... or the transport error's name: what a client presenting ``ctx`` gets."""
    try:
        with httpx.Client(verify=ctx, timeout=10) as http:
            return str(http.get(f"{url}/api/v1/health").status_code)
    except httpx.HTTPError as exc:
        return type(exc).__name__


def check_http_tls(hive: HiveFile, certs: Certs) -> list[Outcome]:
    url = next(iter(hive.nodes.values())).url
    cases = [("allowlisted operator certificate", certs.operator, True),
             ("no client certificate", None, False),
             ("a foreign CA's certificate", certs.foreign, False),
             ("the hive CA's certificate not on the allowlist", certs.good, False)]
    out = []
    for what, files, admitted in cases:
        answer = _http_answer(url, certs.presenting(files))
        ok = answer == "200" if admitted else answer != "200"
        verdict = "admitted" if admitted else "refused"
        out.append(Outcome(f"agent -> node HTTPS: {what} {verdict}", ok, answer))
    return out


async def _nats(url: str, ctx: ssl.SSLContext) -> NatsClient:
    async def quiet(_exc: Exception) -> None:  # the refusals are expected: no log noise
        return None

    return await nats.connect(servers=[url], tls=ctx, allow_reconnect=False, connect_timeout=3,
                              max_reconnect_attempts=0, error_cb=quiet)


async def _connects(url: str, ctx: ssl.SSLContext) -> str:
    try:
        client = await _nats(url, ctx)
    except Exception as exc:  # every way of being refused (TLS alert, closed socket, timeout) is an answer
        return f"refused ({type(exc).__name__})"
    try:
        await client.flush(timeout=3)
        return "connected"
    except Exception as exc:
        return f"refused ({type(exc).__name__})"
    finally:
        await client.close()


def check_nats_client_tls(hive: HiveFile, certs: Certs) -> list[Outcome]:
    url = next(iter(hive.regions.values())).nats_url.split(",")[0]
    cases = [("the hive CA's client certificate", certs.good, True),
             ("no client certificate", None, False),
             ("a foreign CA's client certificate", certs.foreign, False)]
    out = []
    for what, files, admitted in cases:
        answer = asyncio.run(_connects(url, certs.presenting(files)))
        ok = answer == "connected" if admitted else answer.startswith("refused")
        out.append(Outcome(f"node -> NATS client TLS: {what} {'admitted' if admitted else 'refused'}", ok, answer))
    return out


def _joiner_config(*, name: str, port: int, tls: TlsFiles, cluster: tuple[str, int, int] | None,
                   gateway: tuple[str, int, str, int]) -> str:
    """A server without JetStream. ``cluster``: (name, own route port, a hive route port to dial); ``gateway``:
    (own gateway name, own gateway port, a hive region's name, its gateway port to dial; no dial as a route:
    a region's servers share its gateway name, and the route alone must carry the message)."""
    text = f"server_name: {name}\nlisten: {HOST}:{port}\n" + tls_block(tls)
    if cluster is not None:
        cname, own, remote = cluster
        text += (f"cluster {{\n  name: {cname}\n  listen: {HOST}:{own}\n  routes: [ nats://{HOST}:{remote} ]\n"
                 + tls_block(tls, "  ") + "}\n")
    gname, own_gw, region, remote_gw = gateway
    remotes = "" if cluster is not None else f"{{name: {region}, urls: [nats://{HOST}:{remote_gw}]}}"
    return text + (f"gateway {{\n  name: {gname}\n  listen: {HOST}:{own_gw}\n  gateways: [ {remotes} ]\n"
                   + tls_block(tls, "  ") + "}\n")


async def _crosses(hive_url: str, hive_ctx: ssl.SSLContext, joiner_url: str, joiner_ctx: ssl.SSLContext,
                   subject: str) -> bool:
    """Whether a message published on the hive reaches a subscriber on the joiner within :data:`_CROSS_S`."""
    sub_client = await _nats(joiner_url, joiner_ctx)
    pub_client = await _nats(hive_url, hive_ctx)
    try:
        got = asyncio.Event()

        async def on_message(_msg: object) -> None:
            got.set()

        await sub_client.subscribe(subject, cb=on_message)
        await sub_client.flush()
        deadline = time.monotonic() + _CROSS_S
        while not got.is_set() and time.monotonic() < deadline:
            await pub_client.publish(subject, b"proof")  # again until interest has crossed the new link
            await pub_client.flush()
            await asyncio.sleep(0.2)
        return got.is_set()
    finally:
        await sub_client.close()
        await pub_client.close()


def _join(work: Path, name: str, files: TlsFiles, *, as_route: bool, hive: HiveFile, run: str,
          crossed: Callable[[str], Coroutine[Any, Any, bool]]) -> tuple[bool, str]:
    """Start a joiner presenting ``files``; whether a hive message reaches it, and its log's TLS complaint."""
    region, reg = next(iter(hive.regions.items()))
    port = listen_port()
    cluster = (region, listen_port(), reg.cluster_ports[0]) if as_route else None
    # As a route the joiner is one of the region's servers (same gateway name); as a gateway, a region of its own.
    gateway = (region if as_route else f"proof-{name}-{run}", listen_port(), region, reg.gateway_ports[0])
    config = work / f"{name}.conf"
    config.write_text(_joiner_config(name=f"proof-{name}-{run}", port=port, tls=files, cluster=cluster,
                                     gateway=gateway))
    server = NatsServer(store_dir=work / name, port=port, config_file=config)
    server.start(timeout=15)
    try:
        crossed_ok = asyncio.run(crossed(f"tls://{HOST}:{port}"))
        complaint = next((line.strip() for line in server.log_tail(200).splitlines()
                          if "tls" in line.lower() and "error" in line.lower()), "")
    finally:
        server.stop()
    return crossed_ok, complaint


def check_routes_and_gateways(hive: HiveFile, certs: Certs, work: Path, run: str) -> list[Outcome]:
    hive_url = next(iter(hive.regions.values())).nats_url.split(",")[0]
    out = []
    for leg, as_route in (("route", True), ("gateway", False)):
        for who, files in (("hive", certs.good), ("foreign", certs.foreign)):
            name = f"{leg}-{who}"

            async def crossed(url: str, joiner: TlsFiles = files, subject: str = f"proof.{run}.{name}") -> bool:
                # the joiner's own clients trust the joiner's CA; the hive's, the hive's
                return await _crosses(hive_url, certs.presenting(certs.good), url, client_context(joiner), subject)

            joined, complaint = _join(work, name, files, as_route=as_route, hive=hive, run=run, crossed=crossed)
            want = who == "hive"
            verdict = "joins (a message crosses)" if want else "is refused (no message crosses)"
            figure = "crossed" if joined else f"nothing crossed in {_CROSS_S:g} s; {complaint[:110] or 'no log line'}"
            out.append(Outcome(f"NATS {leg}: a server with the {who} CA's certificate {verdict}", joined == want,
                               figure))
    return out
