"""Local launchers for the servers our backends talk to (a real ``nats-server``), for tests and single hosts."""

from __future__ import annotations

from infra.cluster.nats_server import (
    NatsCluster,
    NatsServer,
    NatsServerError,
    find_nats_server,
    run_nats_cluster,
    run_nats_server,
)

__all__ = [
    "NatsCluster",
    "NatsServer",
    "NatsServerError",
    "find_nats_server",
    "run_nats_cluster",
    "run_nats_server",
]
