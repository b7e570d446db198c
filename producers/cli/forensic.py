"""``ai-memory export-forensic-bundle`` and ``verify-forensic-bundle``: the log as evidence another party can
check without the node.

A bundle is a directory: ``log.db`` (every readable event of the node's log, signed bytes unchanged, copied into an
embedded log), ``keys/<id>.pub`` (the public keys the node trusts) and ``manifest.json`` (when, from which log,
how many events, and a SHA-256 over every event's signed body and signature in log order). Verifying re-reads the
bundle alone: each event's signature against the bundle's keys, every writer's hash chain (as ``ai-memory
verify``), the event count and the digest; exit 0 when all hold, 8 otherwise.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path
from typing import Any

from infra.log import Clock, EventLog, LogConfig, copy_log, open_log, redact_url
from producers.cli.audit import audit_log
from producers.cli.backup import empty_dir
from producers.cli.spec import VerbSpec, emit
from producers.errors import ValidationError
from producers.runtime.node import NodeConfig
from schemas import Keyring, now_ts

__all__ = ["VERBS", "bundle_digest"]

MANIFEST = "manifest.json"
EXIT_UNVERIFIED = 8


async def bundle_digest(log: EventLog) -> tuple[str, int]:
    """SHA-256 over every readable event's signed body and signature, in log order; and their count."""
    digest, count = hashlib.sha256(), 0
    clock: Clock = {}
    while records := await log.read(after=clock, limit=1000):
        for record in records:
            clock[record.partition] = record.offset
            if record.unreadable is None:
                digest.update(record.event.body)
                digest.update(record.event.signature)
                count += 1
    return digest.hexdigest(), count


def _bundle_log(bundle: Path, config: NodeConfig) -> LogConfig:
    return LogConfig(url=f"sqlite:///{bundle.resolve()}/log.db", data_dir=bundle, stream=config.stream)


async def _export(args: argparse.Namespace, config: NodeConfig) -> int:
    bundle = Path(args.out).expanduser()
    empty_dir(bundle, "the bundle directory")
    source_config = LogConfig(url=config.log_url, data_dir=config.data_dir, stream=config.stream,
                              replicas=config.replicas, tls=config.log_tls)
    async with await open_log(source_config) as source, await open_log(_bundle_log(bundle, config)) as target:
        copied = await copy_log(source, target)
        digest, count = await bundle_digest(target)
        source_url = redact_url(source.url)
    keyring = Keyring.from_dirs(config.data_dir / "keys", *config.trusted_keys)
    (bundle / "keys").mkdir()
    for key_id, public in keyring.public_keys().items():
        (bundle / "keys" / f"{key_id}.pub").write_bytes(public)
    manifest = {"created_at": now_ts(), "source_log": source_url, "events": count,
                "unreadable_left_out": copied.unreadable, "sha256": digest, "keys": keyring.key_ids()}
    (bundle / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    emit({"bundle": str(bundle), **manifest})
    return 0


async def _verify(args: argparse.Namespace, config: NodeConfig) -> int:
    bundle = Path(args.bundle).expanduser()
    try:
        manifest: dict[str, Any] = json.loads((bundle / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValidationError(f"{bundle} is not a forensic bundle ({MANIFEST}: {exc})") from None
    keyring = Keyring.from_dirs(bundle / "keys")
    async with await open_log(_bundle_log(bundle, config)) as log:
        audit = await audit_log(log, keyring)
        digest, count = await bundle_digest(log)
    report = {"bundle": str(bundle), "events": count, "digest_matches": digest == manifest.get("sha256"),
              "count_matches": count == manifest.get("events"), **audit.to_dict()}
    report["ok"] = bool(audit.ok and report["digest_matches"] and report["count_matches"])
    emit(report)
    return 0 if report["ok"] else EXIT_UNVERIFIED


def _export_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, help="an empty (or new) directory for the bundle")


def _verify_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("bundle", help="a directory written by export-forensic-bundle")


VERBS: list[VerbSpec] = [
    VerbSpec("export-forensic-bundle", "write the log's signed events, the trusted public keys and a digest "
             "manifest to a directory anyone can verify without the node", _export_args, _export),
    VerbSpec("verify-forensic-bundle", "check a forensic bundle on its own: signatures, hash chains, event count "
             "and digest; exit 0 when all hold, 8 otherwise", _verify_args, _verify),
]
