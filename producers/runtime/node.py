"""The composition root: one node = data dir + key + log + read model + projector runner + service.

Every surface (``serve``, the CLI verbs, later ``mcp``) opens a :class:`Node` from a :class:`NodeConfig`;
changing tiers (embedded log → NATS) is configuration only.
"""

from __future__ import annotations

import functools
import logging
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from infra.confirm import open_confirmations
from infra.embed import (
    MINILM,
    Embedder,
    EmbedderConfigError,
    EmbedderSettings,
    LocalEmbedder,
    ModelUnavailableError,
    default_cache_dir,
    default_local_model,
    embedder_kind,
    local_model,
    open_remote,
)
from infra.log import EventLog, LogConfig, open_log, redact_url
from infra.tls import TlsFiles
from producers.errors import CommandError, ValidationError
from producers.governance import GovernanceConfig, GovernanceService
from producers.graph.service import GraphService, KeyFiles, public_keys
from producers.identity.agents import IdentityService
from producers.lifecycle.messaging import MessagingService
from producers.lifecycle.service import LifecycleService
from producers.memory.confidence import ShadowSampler
from producers.memory.semantic import Semantic
from producers.memory.service import MemoryService, ServiceConfig
from producers.runtime.metrics import Metrics
from producers.runtime.node_record import NodeRecord
from producers.webhooks import WebhookConfig, WebhookDelivery
from producers.webhooks.subscriptions import EventVisibility, SubscriptionService
from producers.write.quorum import QuorumConfig
from producers.write.region_quorum import quorum_tracker
from producers.write.writer import EventWriter
from projectors import (
    ApplyResult,
    Confirmer,
    HnswReadModel,
    HnswVectorSearch,
    MemoryReadModel,
    SharedVerifyRunner,
    VectorSearch,
    VerifiedEvents,
    catch_up,
    index_dir,
    open_read_model,
)
from schemas import VECTOR_DIM, Keyring, NodeKey, load_or_create_node_key

__all__ = ["Node", "NodeConfig", "default_data_dir", "load_embedder"]

log = logging.getLogger("ai_memory.node")


def default_data_dir() -> Path:
    env = os.environ.get("AI_MEMORY_HOME")
    return Path(env).expanduser() if env else Path.home() / ".ai-memory"


@dataclass(frozen=True)
class NodeConfig:
    data_dir: Path = field(default_factory=default_data_dir)
    log_url: str = ""
    stream: str = "ai-memory"
    replicas: int = 1
    node_id: str | None = None
    trusted_keys: tuple[Path, ...] = ()
    read_model_path: Path | None = None
    # "" (SQLite in the data dir), a SQLite path, or postgresql+psycopg://… shared by several nodes.
    read_model_url: str = field(default_factory=lambda: os.environ.get("AI_MEMORY_READ_MODEL", ""))
    service: ServiceConfig = field(default_factory=ServiceConfig)
    # "local" (or "auto"): all-MiniLM-L6-v2 if its weights are installed (else keyword mode); "off": never; an
    # http(s)://host:port/v1 URL: that OpenAI-compatible embedding service, with the knobs in ``embedding``.
    embedder: str = field(default_factory=lambda: os.environ.get("AI_MEMORY_EMBEDDER", "local"))
    embedding: EmbedderSettings = field(default_factory=EmbedderSettings)
    model_cache: Path | None = None
    # Quorum writes: W of N nodes must apply a write before it returns (W = 1: the writer alone).
    quorum: QuorumConfig = field(default_factory=QuorumConfig)
    # Client certificate, key and CA for a NATS cluster that requires mutual TLS.
    log_tls: TlsFiles | None = None
    # Webhook delivery: retry ladder, ACK timeout, and whether private networks may be webhook targets.
    webhooks: WebhookConfig = field(default_factory=WebhookConfig.from_env)
    # Governance mode (enforce by default; env AI_MEMORY_GOVERNANCE_MODE), pending timeouts, quotas, HMAC secret.
    governance: GovernanceConfig = field(default_factory=GovernanceConfig)

    @classmethod
    def from_env(cls, *, data_dir: str | None = None, log_url: str | None = None,
                 stream: str | None = None, replicas: int | None = None,
                 quorum: QuorumConfig | None = None) -> NodeConfig:
        return cls(data_dir=Path(data_dir).expanduser() if data_dir else default_data_dir(),
                   log_url=log_url if log_url is not None else os.environ.get("AI_MEMORY_LOG", ""),
                   stream=stream or os.environ.get("AI_MEMORY_STREAM", "ai-memory"),
                   replicas=replicas or int(os.environ.get("AI_MEMORY_REPLICAS", "1")),
                   quorum=quorum or QuorumConfig())


class ReadModelMismatchError(CommandError):
    exit_code = 7


class DataDirError(CommandError):
    """The data directory cannot be used (a file, not writable): nothing was opened."""

    exit_code = 2


def _prepare_data_dir(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write-probe"
        probe.write_bytes(b"")
        probe.unlink()
    except FileExistsError as exc:
        raise DataDirError(f"the data directory {path} is a file, not a directory; "
                           "pass --data-dir (or AI_MEMORY_HOME) naming a directory") from exc
    except OSError as exc:
        raise DataDirError(f"cannot use the data directory {path}: {exc.strerror or exc}; "
                           "pass --data-dir (or AI_MEMORY_HOME) naming a directory you can write") from exc


@functools.cache
def _shared_embedder(cache_dir: Path, device: str, model: str) -> LocalEmbedder:
    return LocalEmbedder.load(cache_dir, device=device, model=model)


def load_embedder(config: NodeConfig) -> tuple[Embedder | None, str | None]:
    """The embedder (the local model: one per process, shared by every node in it; a service: one client per
    node), or None and why not.

    Raises:
        ValidationError: the embedder settings are wrong (the node does not start on a typo).
    """
    settings = config.embedding
    try:
        kind = embedder_kind(config.embedder)
        if kind == "remote":
            return open_remote(config.embedder, settings), None
    except EmbedderConfigError as exc:
        raise ValidationError(str(exc)) from None
    if kind == "off":
        return None, "the embedder is turned off (AI_MEMORY_EMBEDDER=off)"
    try:
        model = local_model(settings.model).short if settings.model else default_local_model()
    except ValueError as exc:
        msg = (f"--embed-model (AI_MEMORY_EMBED_MODEL): {exc}; serve another model with "
               "text-embeddings-inference, vLLM or Ollama and pass its URL as --embedder")
        raise ValidationError(msg) from None
    try:
        return _shared_embedder(config.model_cache or default_cache_dir(), settings.device, model), None
    except ModelUnavailableError as exc:
        log.warning("semantic recall is off, recall runs in keyword mode: %s", exc)
        return None, str(exc)


def _node_id(data_dir: Path, configured: str | None) -> str:
    if configured:
        return configured
    path = data_dir / "node_id"
    if path.exists():
        return path.read_text().strip()
    node_id = f"node-{uuid.uuid4().hex[:8]}"
    path.write_text(node_id + "\n")
    return node_id


class Node:
    def __init__(self, config: NodeConfig, log: EventLog, model: MemoryReadModel, key: NodeKey,
                 keyring: Keyring, *, vectors: HnswReadModel | None = None, embedder: Embedder | None = None,
                 embedder_problem: str | None = None) -> None:
        self.config = config
        self.log = log
        self.model = model
        self.key = key
        self.keyring = keyring
        self.metrics = Metrics()
        # One signature check per event per process, shared by both read models and the producer.
        self.verified = VerifiedEvents()
        self.runner = SharedVerifyRunner(log, model, keyring, on_applied=self._count, verified=self.verified,
                                         consumer=f"projector-{key.key_id}")
        # A shared Postgres read model searches its own vectors (pgvector); otherwise the node keeps an HNSW index
        # fed by its own vector projector.
        shared = model.vector_search()
        self.vectors: HnswReadModel | None = None
        self.vector_runner: SharedVerifyRunner | None = None
        if shared is None:
            self.vectors = vectors or HnswReadModel(config.data_dir / "hnsw")
            self.vector_runner = SharedVerifyRunner(log, self.vectors, keyring, verified=self.verified, host=model,
                                                    audit_chain=False)  # self.runner audits the chains
            self.runner.lead(self.vector_runner)  # each record read and judged once for both models
            search: VectorSearch = HnswVectorSearch(self.vectors)
        else:
            search = shared
            if vectors is not None:
                vectors.close()
        self.semantic = Semantic(embedder, search, unavailable=embedder_problem)
        runners = [r for r in (self.runner, self.vector_runner) if r is not None]
        # Every node confirms what it applied (so others can count it); a writer with W > 1 counts them, and
        # asks every node to confirm each commit while it waits (otherwise they confirm once a heartbeat).
        self.confirmations = open_confirmations(log)
        self.confirmer = Confirmer(key.key_id, runners, self.confirmations)
        self.quorum = quorum_tracker(key.key_id, self.confirmations, config.quorum, log,
                                     ask=self.confirmer.ask, asked=self.confirmer.asked)
        # One writer for every domain service: one lock, one key, the same read-your-writes and quorum rules.
        self.writer = EventWriter(log, key, node_id=key.key_id, runners=runners,
                                  write_timeout=config.service.write_timeout, verified=self.verified,
                                  quorum=self.quorum if config.quorum.needed > 1 or config.quorum.regions > 1
                                  else None)
        self.identity = IdentityService(self.writer, model.identity)
        self.governance = GovernanceService(self.writer, model.governance, model.queries, config.governance,
                                            semantic=self.semantic)
        self.service = MemoryService(self.writer, self.runner, model.queries, config=config.service,
                                     semantic=self.semantic, gate=self.governance.gate,
                                     visibility=self.identity.visibility,
                                     shadow=ShadowSampler.from_env(model.queries.get_many, model.graph.out_links))
        # The webhook delivery projector (its own store and log position); ``serve`` starts and stops it. A
        # subscription's owner gets (and replays, and finds dead-lettered) only events it may read.
        events_seen = EventVisibility(self.identity.visibility, model)
        self.webhooks = WebhookDelivery(log_=log, keyring=keyring, key=key, writer=self.writer, leader=self.runner,
                                        path=config.data_dir / "deliveries.db", config=config.webhooks,
                                        metrics=self.metrics, verified=self.verified, host=model,
                                        visible=events_seen.for_owner)
        self.subscriptions = SubscriptionService(self.writer, model.subscriptions, keyring,
                                                 deliveries=self.webhooks.store, config=config.webhooks,
                                                 visible=events_seen)
        self.lifecycle = LifecycleService(self.writer, model, semantic=self.semantic,
                                          visibility=self.identity.visibility)
        self.messaging = MessagingService(self.service)
        keys = KeyFiles(config.data_dir / "keys", *config.trusted_keys)
        # Links verify against key files first, then the agents' keys registered in the log (a peer's links too).
        self.graph = GraphService(self.writer, model.graph, semantic=self.semantic, keys=keys,
                                  public_keys=public_keys(keys, model.identity),
                                  link_quota=self.governance.gate.check_link_quota,
                                  visibility=self.identity.visibility)

    @property
    def hnsw(self) -> HnswReadModel:
        """The local HNSW read model. A node on a shared Postgres read model has none (it searches pgvector)."""
        if self.vectors is None:
            msg = f"node {self.key.key_id} searches vectors in {self.model.location}, it keeps no HNSW index"
            raise RuntimeError(msg)
        return self.vectors

    def _count(self, result: ApplyResult) -> None:
        self.metrics.inc("ai_memory_events_applied_total", result.applied)
        self.metrics.inc("ai_memory_events_rejected_total", result.rejected)

    @classmethod
    async def open(cls, config: NodeConfig) -> Node:
        _prepare_data_dir(config.data_dir)
        node_id = _node_id(config.data_dir, config.node_id)
        key = load_or_create_node_key(config.data_dir / "keys", node_id)
        keyring = Keyring.from_dirs(config.data_dir / "keys", *config.trusted_keys)
        log = await open_log(LogConfig(url=config.log_url, data_dir=config.data_dir, stream=config.stream,
                                       replicas=config.replicas, tls=config.log_tls))
        model = open_read_model(config.read_model_url,
                                default_path=config.read_model_path or config.data_dir / "readmodel.db")
        model.partitioned = log.partitioned
        try:
            cls._check_source(model, log)
        except BaseException:
            model.close()
            await log.close()
            raise
        record = NodeRecord.of(config)
        if NodeRecord.load(config.data_dir) != record:
            record.save(config.data_dir)
        try:
            embedder, problem = load_embedder(config)
        except BaseException:
            model.close()
            await log.close()
            raise
        # The HNSW index holds one model's vectors, in a directory of its own (a model change rebuilds there).
        name, dim = (embedder.model, embedder.dim) if embedder is not None else (MINILM, VECTOR_DIM)
        vectors = None if model.vector_search() is not None else HnswReadModel.open(
            index_dir(config.data_dir, name, dim, default_model=MINILM), dim=dim, model=name)
        node = cls(config, log, model, key, keyring, vectors=vectors, embedder=embedder, embedder_problem=problem)
        node.quorum.start()  # listen from the start, so even a one-shot CLI write can count confirmations
        return node

    @staticmethod
    def _check_source(model: MemoryReadModel, log: EventLog) -> None:
        """A read model belongs to one log; projecting a second log into it would mix offsets."""
        source = redact_url(log.url)
        recorded = model.meta("log_url")
        if recorded is None:
            model.set_meta("log_url", source)
        elif recorded != source:
            # Most often the cause is a missing or mistyped --log: say that first. A rebuild discards this read
            # model, so it is offered only as the deliberate choice it is.
            msg = (f"the read model in {model.location} was built from the log {recorded}, not {source}: "
                   f"pass --log {recorded} (and its --stream) to use it, or omit --log to use the log this "
                   "data directory remembers; only to switch this node to the other log for good, run "
                   "`ai-memory rebuild` with that --log (it discards this read model)")
            raise ReadModelMismatchError(msg)

    async def start(self) -> None:
        """Catch up with the log, then follow it in the background."""
        await catch_up(self.runner)
        if self.vector_runner is not None:
            await catch_up(self.vector_runner)
        self.runner.start()
        if self.vector_runner is not None:
            self.vector_runner.start()
        self.confirmer.start()

    async def close(self) -> None:
        await self.writer.background.settle()  # recalls' touches still on their way to the log
        await self.webhooks.close()
        await self.confirmer.stop()
        await self.quorum.stop()
        await self.confirmations.close()
        await self.runner.stop()
        if self.vector_runner is not None:
            await self.vector_runner.stop()
        await self.log.close()
        self.model.close()
        if self.vectors is not None:
            self.vectors.close()
        if self.semantic.embedder is not None:
            self.semantic.embedder.close()

    async def __aenter__(self) -> Node:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
