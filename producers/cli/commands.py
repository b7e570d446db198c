"""The memory verbs: store, get, list, search, recall, update, delete, promote, forget, gc, stats,
namespaces, export, import, serve."""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from producers.cli.mcp_verb import profile_arg, resolve_profile
from producers.cli.spec import VerbSpec, emit, open_node, print_memories
from producers.errors import ValidationError
from producers.governance import MODES
from producers.identity.agents import resolve_cli_agent
from producers.input.commands import RANKINGS, parse_create, parse_list_query, parse_recall, parse_update
from producers.input.validation import MAX_BULK
from producers.memory.export import export_document
from producers.memory.recall import round_score
from producers.memory.taxonomy import as_agent_param, visible_namespace_counts
from producers.memory.wire import memory_from_import, stats_body
from producers.runtime.node import NodeConfig
from schemas import now_ts

__all__ = ["VERBS"]


def _filters(p: argparse.ArgumentParser, *, limit: int) -> None:
    p.add_argument("--namespace", "-n")
    p.add_argument("--tier", choices=["short", "mid", "long"])
    p.add_argument("--limit", type=int, default=limit)
    p.add_argument("--min-priority", type=int)
    p.add_argument("--since", help="created at or after (RFC 3339)")
    p.add_argument("--until", help="created at or before (RFC 3339)")
    p.add_argument("--tag", help="only memories carrying this tag")
    p.add_argument("--as-agent", help="apply scope visibility for this agent namespace")


def _filter_params(args: argparse.Namespace) -> dict[str, Any]:
    return {"namespace": args.namespace, "tier": args.tier, "limit": args.limit, "min_priority": args.min_priority,
            "since": args.since, "until": args.until, "tags": args.tag, "as_agent": args.as_agent,
            "offset": getattr(args, "offset", 0), "agent_id": getattr(args, "by_agent", None)}


def _store_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--title", "-T", required=True)
    p.add_argument("--content", "-c", required=True, help="the content; '-' reads standard input")
    p.add_argument("--tier", "-t", default="mid", choices=["short", "mid", "long"])
    p.add_argument("--namespace", "-n", default="global")
    p.add_argument("--tags", default="", help="comma-separated")
    p.add_argument("--priority", "-p", type=int, default=5)
    p.add_argument("--confidence", type=float, default=1.0)
    p.add_argument("--source", default="cli")
    p.add_argument("--ttl-secs", type=int)
    p.add_argument("--expires-at")
    p.add_argument("--scope", choices=["private", "team", "unit", "org", "collective"])
    p.add_argument("--metadata", default="{}", help="a JSON object")
    p.add_argument("--on-conflict", default="error", choices=["error", "merge", "version"])


def _json_arg(text: str, name: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationError(f"--{name} is not JSON: {exc}") from None


async def _store(args: argparse.Namespace, config: NodeConfig) -> int:
    content = sys.stdin.read() if args.content == "-" else args.content
    body = {"title": args.title, "content": content, "tier": args.tier, "namespace": args.namespace,
            "tags": [t.strip() for t in args.tags.split(",") if t.strip()], "priority": args.priority,
            "confidence": args.confidence, "source": args.source, "ttl_secs": args.ttl_secs,
            "expires_at": args.expires_at, "scope": args.scope, "metadata": _json_arg(args.metadata, "metadata"),
            "on_conflict": args.on_conflict}
    cmd = parse_create(body, now=now_ts())
    async with open_node(config) as node:
        result = await node.service.store(cmd, agent_id=resolve_cli_agent(args.agent_id))
    if args.json:
        emit({**result.memory.to_api(), "offset": result.write.offset})
    else:
        print(f"stored {result.memory.id} [{result.memory.tier}] {result.memory.namespace}: {result.memory.title} "
              f"(log offset {result.write.offset})")
    return 0


async def _get(args: argparse.Namespace, config: NodeConfig) -> int:
    async with open_node(config) as node:
        memory = await node.service.get(args.id, as_agent=as_agent_param({"as_agent": args.as_agent}))
    if args.json:
        emit(memory.to_api())
    else:
        for name, value in memory.to_api().items():
            print(f"{name:>17}: {json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value}")
    return 0


async def _list(args: argparse.Namespace, config: NodeConfig) -> int:
    q = parse_list_query(_filter_params(args))
    async with open_node(config) as node:
        print_memories(await node.service.list_memories(q), as_json=args.json)
    return 0


async def _search(args: argparse.Namespace, config: NodeConfig) -> int:
    q = parse_list_query(_filter_params(args))
    async with open_node(config) as node:
        print_memories(await node.service.search(args.query, q), as_json=args.json)
    return 0


async def _recall(args: argparse.Namespace, config: NodeConfig) -> int:
    q = parse_recall({**_filter_params(args), "context": args.context, "budget_tokens": args.budget_tokens,
                      "ranking": args.ranking})
    async with open_node(config) as node:
        result = await node.service.recall(q, agent_id=resolve_cli_agent(args.agent_id))
    print_memories([h.memory for h in result.memories], as_json=args.json,
                   scores=[round_score(h.score) for h in result.memories])
    return 0


async def _update(args: argparse.Namespace, config: NodeConfig) -> int:
    body: dict[str, Any] = {k: getattr(args, k) for k in ("title", "content", "tier", "namespace", "priority",
                                                          "confidence", "expires_at")}
    if args.tags is not None:
        body["tags"] = [t.strip() for t in args.tags.split(",") if t.strip()]
    if args.metadata is not None:
        body["metadata"] = _json_arg(args.metadata, "metadata")
    cmd = parse_update(body)
    async with open_node(config) as node:
        memory, write = await node.service.update(args.id, cmd, agent_id=resolve_cli_agent(args.agent_id))
    emit(memory.to_api()) if args.json else print(f"updated {memory.id} (log offset {write.offset})")
    return 0


async def _delete(args: argparse.Namespace, config: NodeConfig) -> int:
    async with open_node(config) as node:
        write = await node.service.delete(args.id, agent_id=resolve_cli_agent(args.agent_id))
    emit({"deleted": True, "offset": write.offset}) if args.json else print(f"deleted {args.id}")
    return 0


async def _promote(args: argparse.Namespace, config: NodeConfig) -> int:
    async with open_node(config) as node:
        memory, _ = await node.service.promote(args.id, agent_id=resolve_cli_agent(args.agent_id))
    emit({"id": memory.id, "promoted": True, "tier": memory.tier}) if args.json else print(f"promoted {memory.id}")
    return 0


async def _forget(args: argparse.Namespace, config: NodeConfig) -> int:
    # The original v0.7.0's safety rail (its F11): a forget across every namespace must be asked for.
    if args.namespace is None and (args.pattern is not None or args.tier is not None) and not args.confirm_global:
        raise ValidationError("global-scope forget requires --confirm-global; restrict with --namespace=<ns> for "
                              "safety")
    async with open_node(config) as node:
        deleted, _ = await node.service.forget(namespace=args.namespace, pattern=args.pattern, tier=args.tier,
                                               agent_id=resolve_cli_agent(args.agent_id))
    emit({"deleted": deleted}) if args.json else print(f"forgot {deleted} memories")
    return 0


async def _gc(args: argparse.Namespace, config: NodeConfig) -> int:
    async with open_node(config) as node:
        deleted, _ = await node.service.gc(agent_id=resolve_cli_agent(args.agent_id))
    emit({"expired_deleted": deleted}) if args.json else print(f"removed {deleted} expired memories")
    return 0


async def _stats(args: argparse.Namespace, config: NodeConfig) -> int:
    async with open_node(config) as node:
        body = await stats_body(node)
    if args.json:
        emit(body)
        return 0
    print(f"memories: {body['total']}   expiring within 1h: {body['expiring_soon']}")
    print("by tier: " + ", ".join(f"{r['tier']}={r['count']}" for r in body["by_tier"]))
    print("by namespace: " + ", ".join(f"{r['namespace']}={r['count']}" for r in body["by_namespace"]))
    print(f"log: {body['log']['url']} end={body['log']['end_offsets']}")
    proj = body["projector"]
    print(f"projector: at {proj['position']}, {proj['applied_events']} applied, {proj['rejected_events']} rejected")
    return 0


async def _namespaces(args: argparse.Namespace, config: NodeConfig) -> int:
    async with open_node(config) as node:
        # Names are data: the operator's mandatory-as_agent subtrees are left out, as in every unfiltered read.
        rows = await visible_namespace_counts(node, None)
    if args.json:
        emit({"namespaces": [{"namespace": ns, "count": n} for ns, n in rows]})
    else:
        for ns, n in rows:
            print(f"{n:>8}  {ns}")
    return 0


async def _export(args: argparse.Namespace, config: NodeConfig) -> int:
    async with open_node(config) as node:
        doc = await export_document(node, as_agent_param({"as_agent": args.as_agent}))
    text = json.dumps(doc, ensure_ascii=False, indent=2, sort_keys=True)
    if args.output:
        Path(args.output).write_text(text + "\n")
        print(f"exported {doc['count']} memories to {args.output}", file=sys.stderr)
    else:
        print(text)
    return 0


async def _import(args: argparse.Namespace, config: NodeConfig) -> int:
    raw = sys.stdin.read() if args.file == "-" else Path(args.file).read_text()
    doc = _json_arg(raw, "file")
    items = doc.get("memories") if isinstance(doc, dict) else doc
    if not isinstance(items, list):
        raise ValidationError("import file must hold {\"memories\": [...]}")
    agent = resolve_cli_agent(args.agent_id)
    good, errors, restamped = [], [], 0
    for item in items:
        try:
            memory = memory_from_import(item)
        except ValidationError as exc:
            errors.append(f"{item.get('id') if isinstance(item, dict) else None}: {exc}")
            continue
        if not args.trust_source and memory.metadata.get("agent_id") != agent:
            # The importer becomes the author; the original author is kept beside it.
            metadata = {**memory.metadata, "agent_id": agent}
            if "agent_id" in memory.metadata:
                metadata["imported_from_agent_id"] = memory.metadata["agent_id"]
            memory = type(memory)(**{**memory.to_payload(), "metadata": metadata})
            restamped += 1
        good.append(memory)
    async with open_node(config) as node:
        good, refused = node.service.split_tombstoned(good)
        errors += refused
        for start in range(0, len(good), MAX_BULK):
            await node.service.import_memories(good[start:start + MAX_BULK], agent_id=agent)
    out = {"imported": len(good), "restamped": restamped, "trusted_source": args.trust_source, "errors": errors}
    emit(out) if args.json else print(f"imported {len(good)} memories ({restamped} restamped, {len(errors)} errors)")
    for error in errors if not args.json else []:
        print(f"  {error}", file=sys.stderr)
    return 0 if not errors else 2


async def _serve(args: argparse.Namespace, config: NodeConfig) -> int:
    from producers.runtime.mtls import HttpTls
    from producers.runtime.serve import serve

    governance = config.governance
    if args.governance_mode:
        governance = replace(governance, mode=args.governance_mode)
    if args.approval_hmac_secret:
        governance = replace(governance, hmac_secret=args.approval_hmac_secret)
    config = replace(config, governance=governance)
    tls = HttpTls.load(_env(args.tls_cert, "TLS_CERT"), _env(args.tls_key, "TLS_KEY"),
                       _env(args.mtls_allowlist, "MTLS_ALLOWLIST"), _env(args.mtls_ca, "MTLS_CA"))
    await serve(config, host=args.host, port=args.port, api_key=args.api_key, gc_interval=args.gc_interval_secs,
                profile=resolve_profile(args.profile), archive_max_days=_archive_max_days(args), tls=tls)
    return 0


def _env(value: str | None, name: str) -> str | None:
    return value or os.environ.get(f"AI_MEMORY_{name}") or None


def _archive_max_days(args: argparse.Namespace) -> int | None:
    if args.archive_max_days is not None:
        return int(args.archive_max_days)
    value = os.environ.get("AI_MEMORY_ARCHIVE_MAX_DAYS", "").strip()
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise ValidationError(f"AI_MEMORY_ARCHIVE_MAX_DAYS must be an integer (got {value!r})") from None


def _serve_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=9077)
    p.add_argument("--api-key", default=None, help="require this key in X-API-Key or ?api_key= (env AI_MEMORY_API_KEY)")
    p.add_argument("--gc-interval-secs", type=float, default=1800.0)
    p.add_argument("--archive-max-days", type=int,
                   help="with each GC, purge memories archived more than N days ago (env AI_MEMORY_ARCHIVE_MAX_DAYS; "
                        "default: keep them)")
    p.add_argument("--governance-mode", choices=MODES, default=None,
                   help="enforce (the default), advisory (log would-be denials, allow) or off "
                        "(env AI_MEMORY_GOVERNANCE_MODE)")
    p.add_argument("--approval-hmac-secret", default=None,
                   help="the secret of POST /api/v1/approvals/{id} (env AI_MEMORY_APPROVAL_HMAC_SECRET)")
    tls = p.add_argument_group("TLS (HTTPS, and mutual TLS with the original's fingerprint allowlist)")
    tls.add_argument("--tls-cert", help="server certificate (PEM); serve HTTPS (env AI_MEMORY_TLS_CERT)")
    tls.add_argument("--tls-key", help="its private key (PEM) (env AI_MEMORY_TLS_KEY)")
    tls.add_argument("--mtls-allowlist", metavar="FILE",
                     help="require a client certificate whose SHA-256 is listed in FILE, else 403 "
                          "(env AI_MEMORY_MTLS_ALLOWLIST)")
    tls.add_argument("--mtls-ca", metavar="FILE",
                     help="CA(s) client certificates must chain to, for the TLS handshake (env AI_MEMORY_MTLS_CA)")
    profile_arg(p)



def _id_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("id", help="memory id or a unique prefix of it")


def _update_args(p: argparse.ArgumentParser) -> None:
    _id_arg(p)
    # The same short options as ``store``.
    p.add_argument("--title", "-T")
    p.add_argument("--content", "-c")
    p.add_argument("--namespace", "-n")
    for name in ("expires-at", "tags", "metadata"):
        p.add_argument(f"--{name}")
    p.add_argument("--tier", "-t", choices=["short", "mid", "long"])
    p.add_argument("--priority", "-p", type=int)
    p.add_argument("--confidence", type=float)


def _list_args(p: argparse.ArgumentParser) -> None:
    _filters(p, limit=20)
    p.add_argument("--offset", type=int, default=0)
    p.add_argument("--by-agent", help="only memories written by this agent id")


def _search_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("query")
    _filters(p, limit=20)


def _recall_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("context")
    _filters(p, limit=10)
    p.add_argument("--budget-tokens", type=int)
    p.add_argument("--ranking", choices=RANKINGS, help="ours (default) or the original's formula")


def _forget_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--namespace", "-n")
    p.add_argument("--pattern", "-p")
    p.add_argument("--tier", "-t", choices=["short", "mid", "long"])
    p.add_argument("--confirm-global", action="store_true",
                   help="needed for --pattern or --tier without --namespace (they then forget in every namespace)")


def _export_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--output", "-o", help="write to this file instead of standard output")
    p.add_argument("--as-agent", help="export only what this agent namespace may see")


def _get_args(p: argparse.ArgumentParser) -> None:
    _id_arg(p)
    p.add_argument("--as-agent", help="apply scope visibility for this agent namespace")


def _import_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", help="an export JSON file, or '-' for standard input")
    p.add_argument("--trust-source", action="store_true", help="keep each memory's agent_id as it is")


def _none(p: argparse.ArgumentParser) -> None:
    return None


VERBS = [
    VerbSpec("serve", "run the HTTP API (default 127.0.0.1:9077) and MCP over streamable HTTP at /mcp",
             _serve_args, _serve),
    VerbSpec("store", "store a memory", _store_args, _store),
    VerbSpec("get", "show one memory", _get_args, _get),
    VerbSpec("list", "list memories (highest priority first)", _list_args, _list),
    VerbSpec("search", "keyword search (all words must match)", _search_args, _search),
    VerbSpec("recall", "recall memories relevant to a context (touches what it returns)", _recall_args, _recall),
    VerbSpec("update", "change fields of a memory", _update_args, _update),
    VerbSpec("delete", "delete a memory", _id_arg, _delete),
    VerbSpec("promote", "promote a memory to the long tier", _id_arg, _promote),
    VerbSpec("forget", "delete memories by namespace, pattern and/or tier", _forget_args, _forget),
    VerbSpec("gc", "remove expired memories", _none, _gc),
    VerbSpec("stats", "counts, log and projector status", _none, _stats),
    VerbSpec("namespaces", "namespaces and their memory counts", _none, _namespaces),
    VerbSpec("export", "export memories as JSON", _export_args, _export),
    VerbSpec("import", "import memories from an export file", _import_args, _import),
]

