"""The mesh over mutual TLS: a 3-node NATS cluster whose client connections and routes need certificates
signed by the cluster's CA; nodes with one work, connections without one (or with a stranger's) are refused."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.cluster import NatsCluster
from infra.log import LogConfig, LogError, open_log
from infra.tls import TlsError, TlsFiles, fingerprint, make_ca, make_node_cert, parse_allowlist
from producers.input.commands import parse_create
from producers.runtime.node import Node, NodeConfig
from schemas import now_ts


@pytest.fixture(scope="module")
def tls_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsCluster]:
    from tests.conftest import _require_nats_server

    _require_nats_server()
    with NatsCluster(store_dir=tmp_path_factory.mktemp("tls"), tls=True) as cluster:
        yield cluster


def test_routes_and_clients_are_configured_for_mutual_tls(tls_cluster: NatsCluster) -> None:
    config = tls_cluster.nodes[0].command()[-1]
    text = Path(config).read_text()
    assert text.count("verify: true") == 2  # the client port and the cluster routes
    assert tls_cluster.url.startswith("tls://")


async def test_a_node_with_a_certificate_stores_and_reads(tls_cluster: NatsCluster, tmp_path: Path) -> None:
    config = NodeConfig(data_dir=tmp_path / "a", log_url=f"{tls_cluster.url}/tls-stream", stream="tls-stream",
                        replicas=3, embedder="off", log_tls=tls_cluster.client_files("node-a"))
    async with await Node.open(config) as node:
        await node.start()
        stored = await node.service.store(parse_create({"title": "over tls", "content": "mutual"}, now=now_ts()),
                                          agent_id="a")
        assert (await node.service.resolve(stored.memory.id)).title == "over tls"


async def test_connections_without_the_cluster_ca_are_refused(tls_cluster: NatsCluster, tmp_path: Path) -> None:
    assert tls_cluster.ca is not None
    no_cert = ssl.create_default_context(cafile=str(tls_cluster.ca.cert_path))  # trusts the servers, shows nothing
    stranger = make_node_cert(tmp_path / "other", "intruder", make_ca(tmp_path / "other"))
    foreign = TlsFiles(stranger.cert, stranger.key, tls_cluster.ca.cert_path)  # a certificate from another CA
    with pytest.raises(LogError):
        from infra.log.jetstream import JetStreamLog

        await JetStreamLog.connect(tls_cluster.url, stream="tls-refused", timeout=2, tls=no_cert)
    with pytest.raises(LogError):
        await open_log(LogConfig(url=tls_cluster.url, stream="tls-refused", tls=foreign))
    with pytest.raises(LogError):
        await open_log(LogConfig(url=tls_cluster.url, stream="tls-refused",
                                 tls=TlsFiles(tmp_path / "missing.pem", tmp_path / "missing.key", foreign.ca)))


def test_allowlist_format_and_fingerprints(tmp_path: Path) -> None:
    files = make_node_cert(tmp_path, "n", make_ca(tmp_path))
    digest = fingerprint(files.cert.read_bytes())
    colons = ":".join(digest[i:i + 2] for i in range(0, 64, 2)).upper()
    text = f"# peers\n{digest}\nsha256:{colons}  # trailing comment\n\n"
    assert parse_allowlist(text) == {digest}
    with pytest.raises(TlsError):
        parse_allowlist(digest[:30] + " " + digest[30:])
