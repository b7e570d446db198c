"""``open_log(url)``: the only place that chooses a log backend.

    (empty) or sqlite:///path/to/log.db     the embedded log (default: <data dir>/log.db)
    nats://host:port[,host:port...][/stream] NATS JetStream (stream default "ai-memory")
    kafka://host:port[,host:port...][/topic][?partitions=8&replication=1&dedup_window=10000]
                                             Kafka (topic default "ai-memory", created if missing)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from infra.log.base import EventLog
from infra.log.errors import LogError
from infra.log.url import redact_url
from infra.tls import TlsError, TlsFiles, client_context

__all__ = ["LogConfig", "open_log", "redact_url"]


@dataclass(frozen=True)
class LogConfig:
    url: str = ""
    data_dir: Path = Path(".")
    stream: str = "ai-memory"
    replicas: int = 1
    #: Client certificate, key and CA for a NATS cluster that requires mutual TLS.
    tls: TlsFiles | None = None


async def open_log(config: LogConfig) -> EventLog:
    url = config.url.strip()
    if not url or url.startswith("sqlite://"):
        path = Path(url[len("sqlite://"):]) if url else config.data_dir / "log.db"
        from infra.log.embedded import EmbeddedLog

        return EmbeddedLog(path, partition=config.stream)
    if url.startswith(("nats://", "tls://")):
        from infra.log.jetstream import JetStreamLog

        try:
            tls = client_context(config.tls) if config.tls is not None else None
        except TlsError as exc:
            raise LogError(str(exc)) from exc
        return await JetStreamLog.connect(url, stream=config.stream, replicas=config.replicas, tls=tls)
    if url.startswith("kafka://"):
        from infra.log.kafka import KafkaLog

        return await KafkaLog.connect(url, topic=config.stream, replication=config.replicas)
    msg = f"unsupported log URL {redact_url(url)!r}: use sqlite:///path, nats://host:port or kafka://host:port"
    raise LogError(msg)
