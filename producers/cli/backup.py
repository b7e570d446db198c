"""``ai-memory backup`` and ``ai-memory restore``: a consistent snapshot of a node's data directory.

Every SQLite file is copied with SQLite's online backup (a consistent image even while a server writes), the read
models *before* the embedded log: a read model then never holds a position past the log copied with it, and a
restore replays only the events after that position (the tail), as a new node on the same NATS or Kafka log
does. The HNSW files carry their own position (rebuilt from the log when they do not match), and the keys,
``node_id`` and ``node.json`` come along, so the restored node is the same node. A shared Postgres read model and
an external log (NATS, Kafka) are not copied: they are the cluster's, and the backup says so.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

from infra.log import LogConfig, open_log, redact_url
from producers.cli.spec import VerbSpec, emit
from producers.errors import ValidationError
from producers.runtime.node import Node, NodeConfig
from projectors import open_read_model
from schemas import now_ts

__all__ = ["VERBS", "backup_data_dir", "empty_dir", "restore_data_dir"]

MANIFEST = "backup.json"
#: Read models first, the log last (see the module docstring).
_DATABASES = ("readmodel.db", "deliveries.db", "log.db")
_COPIED = ("node_id", "node.json", "keys", "hnsw")


def empty_dir(path: Path, what: str) -> None:
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise ValidationError(f"{what} {path} exists and is not an empty directory")
    path.mkdir(parents=True, exist_ok=True)


def _sqlite_copy(source: Path, target: Path) -> None:
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()


def backup_data_dir(data_dir: Path, target: Path) -> dict[str, Any]:
    if not (data_dir / "node_id").exists():
        raise ValidationError(f"{data_dir} is not a node's data directory (no node_id)")
    empty_dir(target, "the backup directory")
    files = []
    for name in _DATABASES:
        if (data_dir / name).exists():
            _sqlite_copy(data_dir / name, target / name)
            files.append(name)
    for name in _COPIED:
        source = data_dir / name
        if source.is_dir():
            shutil.copytree(source, target / name, ignore=shutil.ignore_patterns("lock"))
            files.append(name + "/")
        elif source.exists():
            shutil.copy2(source, target / name)
            files.append(name)
    manifest = {"created_at": now_ts(), "source": str(data_dir.resolve()), "files": files,
                "log_included": "log.db" in files, "read_model_included": "readmodel.db" in files}
    (target / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


def restore_data_dir(source: Path, data_dir: Path) -> dict[str, Any]:
    manifest_path = source / MANIFEST
    if not manifest_path.exists():
        raise ValidationError(f"{source} is not a backup (no {MANIFEST})")
    manifest: dict[str, Any] = json.loads(manifest_path.read_text(encoding="utf-8"))
    empty_dir(data_dir, "the data directory to restore into")
    for entry in manifest["files"]:
        name = entry.rstrip("/")
        if entry.endswith("/"):
            shutil.copytree(source / name, data_dir / name, dirs_exist_ok=True)
        else:
            shutil.copy2(source / name, data_dir / name)
    return manifest


def _backup_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--to", required=True, help="an empty (or new) directory for the snapshot")


def _restore_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--from", dest="source", required=True, help="a directory written by `ai-memory backup`")


async def _backup(args: argparse.Namespace, config: NodeConfig) -> int:
    manifest = backup_data_dir(config.data_dir, Path(args.to).expanduser())
    if not manifest["log_included"]:
        manifest["note"] = "the log is external (NATS or Kafka): a restore catches up from it"
    emit(manifest)
    return 0


async def _repoint(config: NodeConfig, manifest: dict[str, Any]) -> None:
    """The read model remembers the log it was built from; an embedded log restored beside it is that same log at
    a new path, so the record follows it (an external log keeps its URL and needs nothing)."""
    if not (manifest["log_included"] and manifest["read_model_included"]) or config.read_model_url:
        return
    log = await open_log(LogConfig(url=config.log_url, data_dir=config.data_dir, stream=config.stream))
    try:
        source = redact_url(log.url)
    finally:
        await log.close()
    model = open_read_model("", default_path=config.data_dir / "readmodel.db")
    try:
        recorded = model.meta("log_url")
        if recorded == redact_url(f"sqlite://{manifest['source']}/log.db") and recorded != source:
            model.set_meta("log_url", source)
    finally:
        model.close()


async def _restore(args: argparse.Namespace, config: NodeConfig) -> int:
    manifest = restore_data_dir(Path(args.source).expanduser(), config.data_dir)
    await _repoint(config, manifest)
    node = await Node.open(config)
    try:
        before = dict(node.runner.position)
        await node.runner.catch_up()  # only the events after the snapshot's read-model position
        after = dict(node.runner.position)
    finally:
        await node.close()
    emit({"restored": str(config.data_dir), "from": manifest["source"], "backup_created_at": manifest["created_at"],
          "position_at_backup": before, "position_now": after,
          "replayed": sum(after.get(p, 0) - before.get(p, 0) for p in after)})
    return 0


VERBS: list[VerbSpec] = [
    VerbSpec("backup", "a consistent snapshot of this node's data directory (read models with their log "
             "position, the embedded log, keys): ai-memory backup --to DIR", _backup_args, _backup),
    VerbSpec("restore", "restore a snapshot into an empty data directory; the node then replays only the log's "
             "tail: ai-memory restore --from DIR --data-dir NEW", _restore_args, _restore),
]
