"""Local launchers for the servers our backends talk to (``nats-server``, the ``tansu`` Kafka broker)."""

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

__all__ = [
    "KafkaBroker",
    "KafkaBrokerError",
    "NatsCluster",
    "NatsServer",
    "NatsServerError",
    "find_nats_server",
    "find_tansu",
    "run_nats_cluster",
    "run_nats_server",
]
