"""The log verbs: ``log`` (tail, follow; ``log copy`` between backends),
``rebuild`` (replay into a fresh read model, SQLite or Postgres), ``migrate`` (a Postgres read model's schema),
``verify`` (audit), ``reembed`` (append new vectors after a model change)."""

from __future__ import annotations

import argparse
import base64
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from tqdm import tqdm

from infra.log import LogConfig, LogRecord, copy_log, open_log, redact_url
from producers.cli.audit import audit_log, read_checkpoint, write_checkpoint
from producers.cli.spec import VerbSpec, emit, open_node
from producers.errors import ValidationError
from producers.identity.agents import resolve_cli_agent
from producers.runtime.node import NodeConfig
from producers.runtime.node_record import NodeRecord
from projectors import ChainBrokenError, ReadModelError, is_postgres_url, sqlite_path
from projectors.rebuild import rebuild_hnsw, rebuild_postgres, rebuild_sqlite
from schemas import ChainAudit, ChainBreak, Keyring, now_ts

__all__ = ["VERBS"]


def _record_json(record: LogRecord, *, with_signature: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"partition": record.partition, "offset": record.offset,
                           **record.event.envelope.to_dict()}
    if record.unreadable is not None:
        out["unreadable"] = record.unreadable
    if with_signature:
        out["signature"] = base64.b64encode(record.event.signature).decode()
    return out


def _keyring(config: NodeConfig) -> Keyring:
    return Keyring.from_dirs(config.data_dir / "keys", *config.trusted_keys)


def _log_config(config: NodeConfig) -> LogConfig:
    return LogConfig(url=config.log_url, data_dir=config.data_dir, stream=config.stream, replicas=config.replicas)


def _show(record: LogRecord, args: argparse.Namespace) -> None:
    env = record.event.envelope
    if args.type and env.type != args.type:
        return
    if args.json:
        print(json.dumps(_record_json(record, with_signature=args.signatures), ensure_ascii=False, sort_keys=True),
              flush=True)
        return
    print(f"{record.partition}@{record.offset}  {env.ts}  {env.type:<16} {env.namespace}  by {env.actor}  "
          f"{json.dumps(env.payload, ensure_ascii=False)[:160]}", flush=True)


async def _log(args: argparse.Namespace, config: NodeConfig) -> int:
    return await (_copy if args.action == "copy" else _tail)(args, config)


async def _copy(args: argparse.Namespace, config: NodeConfig) -> int:
    if not args.to_url:
        raise ValidationError("log copy needs --to URL (and --from URL, default this node's log)")
    source_config = replace(_log_config(config), url=args.from_url) if args.from_url else _log_config(config)
    async with await open_log(source_config) as source, \
            await open_log(replace(_log_config(config), url=args.to_url)) as target:
        total = sum((await source.end_offsets()).values())
        with tqdm(total=total, unit="ev", desc="copy", file=sys.stderr, disable=args.quiet or None) as bar:
            result = await copy_log(source, target, progress=lambda n: bar.update(n - bar.n))
    out = {"from": redact_url(source.url), "to": redact_url(target.url), "copied": result.copied,
           "skipped": result.skipped, "unreadable": result.unreadable, "target_end": result.target_end}
    emit(out) if args.json else print(f"copied {result.copied} events ({result.skipped} already there) "
                                      f"from {out['from']} to {out['to']}")
    return 0


async def _tail(args: argparse.Namespace, config: NodeConfig) -> int:
    async with await open_log(_log_config(config)) as log:
        end = await log.end_offsets()
        if args.after is not None:
            position = {p: args.after for p in end}
        else:
            position = {p: max(0, off - args.last) for p, off in end.items()}
        if args.follow:
            async for record in log.subscribe(after=position):
                _show(record, args)
            return 0
        while batch := await log.read(after=position, limit=1000):
            for record in batch:
                _show(record, args)
                position[record.partition] = record.offset
    return 0


async def _rebuild(args: argparse.Namespace, config: NodeConfig) -> int:
    into = args.into or config.read_model_url
    postgres = is_postgres_url(into)
    target = redact_url(into) if postgres else str(sqlite_path(into, config.data_dir / "readmodel.db"))
    chain = ChainAudit()
    async with await open_log(_log_config(config)) as log:
        total = sum((await log.end_offsets()).values())
        if postgres and not args.allow_breaks:
            # A Postgres rebuild empties the model first: audit before, or a broken log is found too late.
            audit = await audit_log(log, _keyring(config))
            if audit.breaks:
                return _refuse(audit.breaks, args)
        with tqdm(total=total, unit="ev", desc="rebuild", file=sys.stderr, disable=args.quiet or None) as bar:
            def progress(done: int, _total: int) -> None:
                bar.update(done - bar.n)

            # The node's own read models: the vector index is rebuilt from the vectors in the log too, in the
            # same pass as a SQLite model (each event read and verified once for both).
            vectors = None if args.into else config.data_dir / "hnsw"
            try:
                if postgres:
                    position = await rebuild_postgres(log, _keyring(config), into, progress=progress, chain=chain)
                else:
                    position = await rebuild_sqlite(log, _keyring(config), Path(target), progress=progress,
                                                    vectors=vectors, chain=chain,
                                                    refuse_breaks=not args.allow_breaks)
            except ChainBrokenError as exc:
                return _refuse(exc.breaks, args)
        breaks = chain.finish()
        out: dict[str, object] = {"read_model": target, "position": position, "events": total,
                                  "chain_breaks": [b.to_dict() for b in breaks]}
        if vectors is not None and not postgres:
            out["vector_index_position"] = position  # built in the same pass
        elif vectors is not None:
            with tqdm(total=total, unit="ev", desc="vectors", file=sys.stderr, disable=args.quiet or None) as bar:
                def vector_progress(done: int, _total: int) -> None:
                    bar.update(done - bar.n)

                out["vector_index_position"] = await rebuild_hnsw(log, _keyring(config), vectors,
                                                                  progress=vector_progress)
    if not args.into:
        NodeRecord.of(config).save(config.data_dir)  # the node's read models now follow this log
    accepted = f" ({len(breaks)} chain breaks accepted)" if breaks else ""
    emit(out) if args.json else print(f"rebuilt {target} from {total} events, now at {position}{accepted}")
    return 0


def _refuse(breaks: list[ChainBreak], args: argparse.Namespace) -> int:
    """A rebuild that would replay a log with cut or moved records: the read model stays as it was."""
    if args.json:
        emit({"refused": True, "chain_breaks": [b.to_dict() for b in breaks]})
    else:
        for broken in breaks:
            print(f"BREAK {broken}")
        print(f"the log breaks its writers' hash chains in {len(breaks)} place(s): the read model was left as it "
              "was. See `ai-memory verify`; `rebuild --allow-breaks` replays the log as it is.")
    return 8


async def _migrate(args: argparse.Namespace, config: NodeConfig) -> int:
    url = config.read_model_url
    if not is_postgres_url(url):
        raise ValidationError("migrate needs --read-model postgresql+psycopg://… (SQLite read models are rebuilt "
                              "from the log when their schema changes)")
    try:
        from projectors.postgres import current_revision, migrate
        from projectors.postgres.schema import connect
    except ImportError as exc:
        raise ReadModelError(f"migrate needs the postgres extra: {exc}") from None
    engine = connect(url)
    try:
        before = current_revision(engine)
        after = migrate(engine, args.revision)
    finally:
        engine.dispose()
    out = {"read_model": redact_url(url), "from": before, "to": after}
    emit(out) if args.json else print(f"{out['read_model']}: schema {before or 'empty'} -> {after}")
    return 0


async def _verify(args: argparse.Namespace, config: NodeConfig) -> int:
    checkpoint = read_checkpoint(args.checkpoint) if args.checkpoint else None
    async with await open_log(_log_config(config)) as log:
        total = sum((await log.end_offsets()).values())
        with tqdm(total=total, unit="ev", desc="verify", file=sys.stderr, disable=args.quiet or None) as bar:
            audit = await audit_log(log, _keyring(config), checkpoint=checkpoint, progress=bar.update)
        if args.checkpoint and audit.ok:
            write_checkpoint(args.checkpoint, audit, log_url=redact_url(log.url))
    if args.json:
        emit(audit.to_dict())
    else:
        for item in audit.bad:
            print(f"BAD {item['partition']}@{item['offset']} {item['event_id']}: {item['error']}")
        for broken in audit.breaks:
            print(f"BREAK {broken}")
        chain = audit.chain.summary()
        print(f"checked {audit.checked} events: {len(audit.bad)} bad; {chain['epochs']} chain epochs from "
              f"{chain['origins']} nodes, {len(audit.breaks)} breaks ({chain['unchained']} events unchained)")
    return 0 if audit.ok else 8


async def _reembed(args: argparse.Namespace, config: NodeConfig) -> int:
    async with open_node(config) as node:
        await node.service.sync()
        total = node.service.queries.stats(now_ts(), now_ts()).total
        with tqdm(total=total, unit="mem", desc="reembed", file=sys.stderr, disable=args.quiet or None) as bar:
            done = await node.service.reembed(only_missing=args.missing, agent_id=resolve_cli_agent(args.agent_id),
                                              progress=lambda n: bar.update(n - bar.n))
        model = node.semantic.status().model
    out = {"embedded": done, "model": model, "only_missing": args.missing}
    emit(out) if args.json else print(f"appended {done} memory.embedded events ({model})")
    return 0


def _reembed_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--missing", action="store_true", help="only memories that have no vector yet")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")


def _tail_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=["tail", "copy"],
                   help="tail: print events; copy: copy every event to another log (--from, --to)")
    p.add_argument("--follow", "-f", action="store_true", help="keep printing new events as they arrive")
    p.add_argument("--last", type=int, default=20, help="start this many events before the end (default 20)")
    p.add_argument("--after", type=int, help="start after this offset instead")
    p.add_argument("--type", help="only events of this type, e.g. memory.stored")
    p.add_argument("--signatures", action="store_true", help="include signatures in --json output")
    p.add_argument("--from", dest="from_url", help="copy: the source log URL (default: this node's log)")
    p.add_argument("--to", dest="to_url", help="copy: the target log URL (sqlite:///…, nats://…, kafka://…)")
    p.add_argument("--quiet", "-q", action="store_true", help="copy: no progress bar")


def _rebuild_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--into", help="rebuild this read model instead of the node's own: a SQLite file or "
                                  "postgresql+psycopg://… (stop the servers using it first)")
    p.add_argument("--allow-breaks", action="store_true",
                   help="replay even a log that breaks a writer's hash chain (records deleted or moved); by "
                        "default such a rebuild is refused (exit 8) and the read model left as it was")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")


def _migrate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--revision", default="head", help="upgrade to this Alembic revision (default: the newest)")


def _verify_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    p.add_argument("--checkpoint", type=Path, help="a file of each chain's last seq and hash: the log must still "
                                                  "hold them; rewritten after a clean run (keep it off this host)")


VERBS = [
    VerbSpec("log", "read the event log: `log tail [-f]`; copy it to another backend: `log copy --to URL`",
             _tail_args, _log),
    VerbSpec("rebuild", "replay the whole log into a fresh read model (with progress)", _rebuild_args, _rebuild),
    VerbSpec("migrate", "bring a Postgres read model's schema up to date (--read-model URL)", _migrate_args,
             _migrate),
    VerbSpec("verify", "check every event's signature and every writer's hash chain; exit 8 on a bad event or "
             "a break", _verify_args, _verify),
    VerbSpec("reembed", "embed every memory again with the loaded model, appending memory.embedded events "
             "(with progress)", _reembed_args, _reembed),
]
