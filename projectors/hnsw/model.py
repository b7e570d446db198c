"""The HNSW read model: follows the log's memory events into an :class:`HnswIndex`, and saves itself to disk
with the log position it covers, so a restart loads the file and catches up from there instead of rebuilding.

It needs no model: vectors come from ``memory.embedded`` events. Other memory events keep each vector's
namespace and scope current (they drive the in-search filters) and drop a vector when its text changes or the
memory goes away. A vector of the wrong dimension is refused and counted (``dim_violations``). A model keeps
one embedding model's vectors (``model``; None takes any): a vector of another model is skipped and counted
(``other_model``), never mixed in, and a node that changes its model opens another directory
(:func:`index_dir`) whose model replays the log for its own vectors.

Files in its directory: ``index-<generation>.bin`` (hnswlib's graph), ``labels-<generation>.json`` (ids,
namespaces, scopes of each label, and memories still waiting for a vector) and ``manifest.json`` (position,
generation, checksums), written last and atomically: the snapshot on disk is always one whole generation.
A missing, unreadable or mismatching snapshot is logged as a warning and the model starts empty, so the
runner replays the log from the beginning. Only one process per directory saves (an advisory lock);
others keep their index in memory.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from infra.log import Clock, LogRecord
from projectors.base import ApplyResult, ReadModel, Verdict
from projectors.hnsw.index import Entry, HnswIndex
from schemas import VECTOR_DIM, PayloadError, SchemaError, decode_payload, decode_vector
from schemas.events import (
    MemoriesArchived,
    MemoryDeleted,
    MemoryEmbedded,
    MemoryExpired,
    MemoryForgotten,
    MemoryImported,
    MemoryRestored,
    MemoryStored,
    MemoryUpdated,
)

__all__ = ["HnswReadModel", "HnswStatus", "index_dir"]

log = logging.getLogger("ai_memory.hnsw")

_FORMAT = 1
# A restored memory comes back like a new one: its vector follows in a memory.embedded event.
_NEW_MEMORY = (MemoryStored.TYPE, MemoryImported.TYPE, MemoryRestored.TYPE)
_DEDUP_WINDOW = 200_000


@dataclass(frozen=True, slots=True)
class HnswStatus:
    vectors: int
    dim: int
    position: Clock
    loaded_from: str
    dim_violations: int
    rejected: int
    saved_generation: int
    memory_bytes: int
    model: str | None = None
    other_model: int = 0


def index_dir(data_dir: Path, model: str, dim: int, *, default_model: str) -> Path:
    """Where a node keeps the HNSW index of ``model``: ``hnsw/`` for the default model at 384 dimensions (as
    before models were keyed), ``hnsw-<model>-<dim>/`` for any other, so switching back and forth reuses each."""
    if model == default_model and dim == VECTOR_DIM:
        return data_dir / "hnsw"
    slug = "".join(c if c.isalnum() or c in "-_." else "_" for c in model)[:80]
    return data_dir / f"hnsw-{slug}-{dim}"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def _scope(metadata: dict[str, Any] | None) -> str:
    scope = (metadata or {}).get("scope")
    return scope if isinstance(scope, str) else "private"


class HnswReadModel(ReadModel):
    """Open with :meth:`open`; the runner drives :meth:`apply_batch`; :meth:`save` on a timer and at close."""

    def __init__(self, directory: Path, *, dim: int = VECTOR_DIM, save_every_secs: float = 300.0,
                 model: str | None = None) -> None:
        self.directory = directory
        self.dim = dim
        self.model = model
        self.other_model = 0
        self.save_every_secs = save_every_secs
        self.index = HnswIndex(dim)
        self.pending: dict[str, tuple[str, str]] = {}  # memories without a vector yet: id → (namespace, scope)
        self._position: Clock = {}
        self._recent: OrderedDict[str, None] = OrderedDict()
        self.dim_violations = 0
        self.rejected = 0
        self.generation = 0
        self.loaded_from = "new"
        self._dirty = False
        self._last_save = time.monotonic()
        self._lock_file: IO[bytes] | None = None

    # -- opening and saving ------------------------------------------------------------------------------

    @classmethod
    def open(cls, directory: Path, *, dim: int = VECTOR_DIM, save_every_secs: float = 300.0,
             model: str | None = None) -> HnswReadModel:
        read_model = cls(directory, dim=dim, save_every_secs=save_every_secs, model=model)
        directory.mkdir(parents=True, exist_ok=True)
        read_model._take_lock()
        manifest = directory / "manifest.json"
        if not manifest.exists():
            if any(directory.glob("index-*.bin")):
                log.warning("HNSW index in %s has no manifest; rebuilding it from the log", directory)
                read_model.loaded_from = "rebuilt: manifest missing"
            return read_model
        try:
            read_model._load(json.loads(manifest.read_text()))
        except Exception as exc:
            log.warning("HNSW index in %s is unusable (%s); rebuilding it from the log", directory, exc)
            fresh = cls(directory, dim=dim, save_every_secs=save_every_secs, model=model)
            fresh._lock_file, read_model._lock_file = read_model._lock_file, None
            fresh.loaded_from = f"rebuilt: {exc}"
            return fresh
        return read_model

    def _take_lock(self) -> None:
        handle = (self.directory / "lock").open("ab")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            log.info("HNSW index in %s is saved by another process; this one keeps it in memory", self.directory)
            return
        self._lock_file = handle

    def _load(self, manifest: dict[str, Any]) -> None:
        if manifest.get("format") != _FORMAT or manifest.get("dim") != self.dim:
            msg = f"format {manifest.get('format')} dim {manifest.get('dim')}, expected {_FORMAT} dim {self.dim}"
            raise ValueError(msg)
        # A snapshot from before models were keyed (no "model") was built from the one model there was.
        if manifest.get("model") not in (None, self.model):
            raise ValueError(f"model {manifest.get('model')!r}, expected {self.model!r}")
        graph, labels = self.directory / manifest["index_file"], self.directory / manifest["labels_file"]
        if _sha256(graph) != manifest["index_sha256"] or _sha256(labels) != manifest["labels_sha256"]:
            raise ValueError("checksum mismatch")
        state = json.loads(labels.read_text())
        index = HnswIndex.load_graph(graph, self.dim)
        for label, memory_id, namespace, scope in state["entries"]:
            index._link(int(label), Entry(memory_id, namespace, scope))
        index.next_label = int(state["next_label"])
        self.index = index
        self.pending = {i: (ns, scope) for i, ns, scope in state["pending"]}
        self._position = {str(k): int(v) for k, v in manifest["position"].items()}
        self.dim_violations = int(manifest.get("dim_violations", 0))
        self.other_model = int(manifest.get("other_model", 0))
        self.rejected = int(manifest.get("rejected", 0))
        self.generation = int(manifest["generation"])
        self.loaded_from = f"snapshot generation {self.generation}"

    def save(self) -> bool:
        """Write a new generation and switch the manifest to it; False when another process owns the files."""
        if self._lock_file is None:
            return False
        gen = self.generation + 1
        graph, labels = self.directory / f"index-{gen}.bin", self.directory / f"labels-{gen}.json"
        self.index.save_graph(graph)
        state = {"next_label": self.index.next_label,
                 "entries": [[label, e.id, e.namespace, e.scope] for label, e in self.index.entries.items()],
                 "pending": [[i, ns, scope] for i, (ns, scope) in self.pending.items()]}
        labels.write_text(json.dumps(state, separators=(",", ":")))
        manifest = {"format": _FORMAT, "generation": gen, "dim": self.dim, "model": self.model,
                    "other_model": self.other_model, "position": self._position,
                    "index_file": graph.name, "labels_file": labels.name, "index_sha256": _sha256(graph),
                    "labels_sha256": _sha256(labels), "vectors": len(self.index),
                    "dim_violations": self.dim_violations, "rejected": self.rejected}
        tmp = self.directory / "manifest.json.tmp"
        with tmp.open("w") as f:
            json.dump(manifest, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.directory / "manifest.json")
        for old in (*self.directory.glob("index-*.bin"), *self.directory.glob("labels-*.json")):
            if old.name not in (graph.name, labels.name):
                old.unlink(missing_ok=True)
        self.generation = gen
        self._dirty = False
        self._last_save = time.monotonic()
        return True

    def maybe_save(self) -> None:
        if self._dirty and time.monotonic() - self._last_save >= self.save_every_secs:
            self.save()

    def close(self) -> None:
        if self._dirty:
            self.save()
        if self._lock_file is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._lock_file, fcntl.LOCK_UN)
            self._lock_file.close()
            self._lock_file = None

    # -- the ReadModel contract ---------------------------------------------------------------------------

    def position(self) -> Clock:
        return dict(self._position)

    def apply_batch(self, verdicts: Sequence[Verdict]) -> ApplyResult:
        # Read every record before changing anything, so a batch that fails part-way changes nothing.
        records = [(v.record, v.rejected) for v in verdicts]
        applied = skipped = rejected = 0
        position = dict(self._position)
        adds: dict[str, bytes] = {}
        for record, refusal in records:
            if record.offset <= position.get(record.partition, 0):
                skipped += 1
                continue
            position[record.partition] = record.offset
            outcome = "rejected" if refusal else self._apply(record, adds)
            applied += outcome == "applied"
            skipped += outcome == "skipped"
            rejected += outcome == "rejected"
        self._flush(adds)
        self._position = position
        self.rejected += rejected
        self._dirty = self._dirty or applied > 0 or rejected > 0 or skipped > 0
        self.maybe_save()
        return ApplyResult(applied=applied, skipped=skipped, rejected=rejected)

    def _seen(self, event_id: str) -> bool:
        """Re-delivery of an event at a new offset changes nothing (within a window of recent event ids)."""
        if event_id in self._recent:
            return True
        self._recent[event_id] = None
        if len(self._recent) > _DEDUP_WINDOW:
            self._recent.popitem(last=False)
        return False

    def _apply(self, record: LogRecord, adds: dict[str, bytes]) -> str:
        envelope = record.event.envelope
        if self._seen(envelope.event_id):
            return "skipped"
        if envelope.type in _NEW_MEMORY:
            return self._new_memory(envelope.payload, adds)
        try:
            payload = decode_payload(envelope.type, envelope.payload)
        except SchemaError:
            return "rejected"
        if isinstance(payload, MemoryEmbedded):
            return self._embedded(payload, adds)
        if isinstance(payload, MemoryUpdated):
            self._updated(payload, adds)
        elif isinstance(payload, MemoryDeleted):
            self._drop(payload.id, adds)
        elif isinstance(payload, MemoryForgotten | MemoryExpired | MemoriesArchived):
            for memory_id in payload.ids:
                self._drop(memory_id, adds)
        return "applied"

    def _new_memory(self, payload: dict[str, Any], adds: dict[str, bytes]) -> str:
        """memory.stored / memory.imported. Only id, namespace and scope matter here, so only they are read and
        checked (the SQLite model checks the whole memory): this is the hot path of bulk ingest."""
        memory = payload.get("memory")
        if not isinstance(memory, dict):
            return "rejected"
        memory_id, namespace, metadata = memory.get("id"), memory.get("namespace"), memory.get("metadata")
        if not isinstance(memory_id, str) or not isinstance(namespace, str):
            return "rejected"
        self._forget_vector(memory_id, adds)
        self.pending[memory_id] = (namespace, _scope(metadata if isinstance(metadata, dict) else None))
        return "applied"

    def _embedded(self, event: MemoryEmbedded, adds: dict[str, bytes]) -> str:
        if self.model is not None and event.model != self.model:
            self.other_model += 1  # another model's vector: never compared with this model's queries
            return "skipped"
        if event.dim != self.dim:
            self.dim_violations += 1
            log.warning("refusing a %d-dimension vector for memory %s (index holds %d)", event.dim, event.id,
                        self.dim)
            return "rejected"
        try:
            raw = decode_vector(event.vector, event.dim)
        except PayloadError:
            return "rejected"
        if event.id not in self.pending and event.id not in self.index:
            return "rejected"  # the memory does not exist (any more)
        adds[event.id] = raw
        return "applied"

    def _updated(self, event: MemoryUpdated, adds: dict[str, bytes]) -> None:
        c = event.changes
        where = self._meta(event.id)
        if where is None:
            return
        namespace = c.namespace if c.namespace is not None else where[0]
        scope = _scope(c.metadata) if c.metadata is not None else where[1]
        if c.title is not None or c.content is not None:
            self._forget_vector(event.id, adds)
        if event.id in self.pending:
            self.pending[event.id] = (namespace, scope)
        else:
            self.index.relabel(event.id, namespace=namespace, scope=scope)

    def _meta(self, memory_id: str) -> tuple[str, str] | None:
        if memory_id in self.pending:
            return self.pending[memory_id]
        entry = self.index.entry(memory_id)
        return None if entry is None else (entry.namespace, entry.scope)

    def _forget_vector(self, memory_id: str, adds: dict[str, bytes]) -> None:
        """The text changed: the old vector goes; the memory waits for its new one."""
        adds.pop(memory_id, None)
        entry = self.index.remove(memory_id)
        if entry is not None:
            self.pending[memory_id] = (entry.namespace, entry.scope)

    def _drop(self, memory_id: str, adds: dict[str, bytes]) -> None:
        adds.pop(memory_id, None)
        self.pending.pop(memory_id, None)
        self.index.remove(memory_id)

    def _flush(self, adds: dict[str, bytes]) -> None:
        items = []
        for memory_id, raw in adds.items():
            meta = self.pending.pop(memory_id, None) or self._meta(memory_id)
            if meta is not None:
                items.append((Entry(memory_id, *meta), raw))
        self.index.upsert(items)

    # -- reporting ----------------------------------------------------------------------------------------

    def status(self) -> HnswStatus:
        return HnswStatus(vectors=len(self.index), dim=self.dim, position=self.position(),
                          loaded_from=self.loaded_from, dim_violations=self.dim_violations, rejected=self.rejected,
                          saved_generation=self.generation, memory_bytes=self.index.memory_bytes(),
                          model=self.model, other_model=self.other_model)
