"""``DIR/hive.json``: what the hive launcher started, for tools that check a live hive (the proof,
:mod:`infra.cluster.proof`) without parsing its printed lines.

It names each region's NATS servers (client URL, route and gateway ports), each ai-memory node (region, URL,
data dir, process id at start), the WAN proxy (process id, state file) and, with ``--tls``, the certificate
files (the CA and its key, the operator's client certificate, the HTTP allowlist). Written once the nodes are
started; a node the launcher restarts later (``--restart``) has another pid than the one recorded.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

__all__ = ["HIVE_FILE", "HiveFile", "HiveNode", "HiveRegion", "HiveTls", "WanLink"]

HIVE_FILE = "hive.json"


@dataclass(frozen=True)
class HiveRegion:
    nats_url: str
    cluster_ports: list[int]
    gateway_ports: list[int]
    nodes: list[str]


@dataclass(frozen=True)
class HiveNode:
    region: str
    url: str
    data_dir: str
    pid: int | None


@dataclass(frozen=True)
class WanLink:
    pid: int
    state_file: str
    delay_ms: float


@dataclass(frozen=True)
class HiveTls:
    ca: str
    ca_key: str
    operator_cert: str
    operator_key: str
    allowlist: str


@dataclass(frozen=True)
class HiveFile:
    regions: dict[str, HiveRegion]
    nodes: dict[str, HiveNode]
    quorum_writes: int
    wan: WanLink | None = None
    tls: HiveTls | None = None

    def write(self, directory: Path) -> Path:
        path = directory / HIVE_FILE
        path.write_text(json.dumps(asdict(self), indent=2, sort_keys=True) + "\n")
        return path

    @classmethod
    def read(cls, directory: Path) -> HiveFile:
        raw = json.loads((directory / HIVE_FILE).read_text())
        return cls(regions={k: HiveRegion(**v) for k, v in raw["regions"].items()},
                   nodes={k: HiveNode(**v) for k, v in raw["nodes"].items()},
                   quorum_writes=int(raw["quorum_writes"]),
                   wan=WanLink(**raw["wan"]) if raw.get("wan") else None,
                   tls=HiveTls(**raw["tls"]) if raw.get("tls") else None)
