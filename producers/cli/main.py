"""``ai-memory``: the command line. Every verb runs on the same node code as the server.

Exit codes: 0 ok, 1 internal error, 2 invalid input, 3 not found, 4 conflict, 5 auth, 6 unavailable,
7 the read model belongs to another log (run ``ai-memory rebuild``), 8 the log holds events that do not verify.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from infra.embed import DEVICES, EmbedderConfigError, EmbedderSettings
from infra.tls import TlsFiles
from producers.cli import (
    backup,
    commands,
    consolidation,
    eventloop,
    forensic,
    lifecycle,
    logtools,
    mcp_verb,
    mine,
    operator,
    parity,
    reflections,
)
from producers.cli import certs as certs_verb
from producers.cli import cluster as cluster_verb
from producers.cli import curator as curator_verb
from producers.cli import governance as governance_verb
from producers.cli import graph as graph_verbs
from producers.cli import identity as identity_verbs
from producers.cli.help import describe, version
from producers.errors import CommandError, ValidationError, reply_for
from producers.runtime.node import NodeConfig
from producers.runtime.node_record import NodeRecord
from producers.runtime.running import running_servers
from producers.write.quorum import QuorumConfig

__all__ = ["build_parser", "main"]

Verb = Callable[[argparse.Namespace, NodeConfig], Awaitable[int]]


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", help="data directory (env AI_MEMORY_HOME; default ~/.ai-memory)")
    parser.add_argument("--log", dest="log_url", default=None,
                        help="event log: sqlite:///path/log.db, nats://host:port[/stream] or "
                             "kafka://host:port[/topic] (env AI_MEMORY_LOG; default: the log the data directory "
                             "remembers from its first start, else <data-dir>/log.db)")
    parser.add_argument("--stream", default=None, help="stream / topic name (default ai-memory)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--agent-id", help="acting agent id (env AI_MEMORY_AGENT_ID)")
    parser.add_argument("--read-model", default=None, metavar="URL",
                        help="memory read model: a SQLite file (default <data-dir>/readmodel.db; one outside the "
                             "data dir may be shared by the nodes of one host) or postgresql+psycopg://… shared by "
                             "several nodes (env AI_MEMORY_READ_MODEL)")
    cluster = parser.add_argument_group("cluster (T3)")
    cluster.add_argument("--replicas", type=int, default=None,
                         help="copies of the stream on a NATS cluster (env AI_MEMORY_REPLICAS; default 1)")
    cluster.add_argument("--quorum-writes", type=int, default=None, metavar="W",
                         help="a write returns once W nodes (the writer included) applied it "
                              "(env AI_MEMORY_QUORUM_WRITES; default 1)")
    cluster.add_argument("--cluster-size", type=int, default=None, metavar="N",
                         help="nodes in the cluster; W is clamped to [1, N] (env AI_MEMORY_CLUSTER_SIZE; "
                              "default: --replicas)")
    cluster.add_argument("--quorum-regions", type=int, default=None, metavar="K",
                         help="on a hive's regional log: a write also waits until K regions (its own included) "
                              "applied it (env AI_MEMORY_QUORUM_REGIONS; default 1: the region alone)")
    cluster.add_argument("--quorum-timeout-ms", type=int, default=None,
                         help="how long a quorum write waits (env AI_MEMORY_QUORUM_TIMEOUT_MS; default 2000)")
    cluster.add_argument("--log-cert", help="client certificate (PEM) for a NATS cluster with mutual TLS "
                                            "(env AI_MEMORY_LOG_CERT; with --log-key and --log-ca)")
    cluster.add_argument("--log-key", help="its private key (env AI_MEMORY_LOG_KEY)")
    cluster.add_argument("--log-ca", help="the CA that signed the servers' certificates (env AI_MEMORY_LOG_CA)")
    _embedding_options(parser)


def _embedding_options(parser: argparse.ArgumentParser) -> None:
    embed = parser.add_argument_group("embeddings (semantic recall)")
    embed.add_argument("--embedder", default=None, metavar="local|off|URL",
                       help="local: a sentence model in this process (the default); off: keyword recall only; or an "
                            "OpenAI-compatible service's base URL, http(s)://host:port/v1 (env AI_MEMORY_EMBEDDER)")
    embed.add_argument("--embed-model", default=None, metavar="NAME",
                       help="local: minilm (all-MiniLM-L6-v2, the default) or mpnet (all-mpnet-base-v2, the [mpnet] "
                            "extra); a service: its model name (env AI_MEMORY_EMBED_MODEL)")
    embed.add_argument("--embed-dim", default=None, metavar="N",
                       help="its dimension (env AI_MEMORY_EMBED_DIM; default: asked from the service at start)")
    embed.add_argument("--embed-api-key-file", default=None, metavar="FILE",
                       help="a file holding the service's API key (or env AI_MEMORY_EMBED_API_KEY)")
    embed.add_argument("--embed-timeout", default=None, metavar="SECS",
                       help="seconds per request to the service (env AI_MEMORY_EMBED_TIMEOUT; default 30)")
    embed.add_argument("--embed-batch", default=None, metavar="N",
                       help="texts per request (env AI_MEMORY_EMBED_BATCH; default 64)")
    embed.add_argument("--embed-device", default=None, choices=DEVICES,
                       help="where the local model runs: auto takes a GPU when onnxruntime-gpu finds one "
                            "(env AI_MEMORY_EMBED_DEVICE; default auto)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ai-memory", description="Persistent, event-sourced memory for AI agents. Every change is a signed "
        "event on a log; reads come from read models the projector builds from it.")
    # The original's global `--db FILE` (found in agents' MCP configs): here the data dir FILE without its suffix.
    parser.add_argument("--db", help=argparse.SUPPRESS)
    parser.add_argument("--version", action="version", version=f"ai-memory {version()}")
    sub = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    specs = (commands.VERBS + graph_verbs.VERBS + lifecycle.VERBS + logtools.VERBS + mcp_verb.VERBS
             + cluster_verb.VERBS + governance_verb.VERBS + identity_verbs.VERBS + certs_verb.VERBS + operator.VERBS
             + backup.VERBS + mine.VERBS + reflections.VERBS + forensic.VERBS
             + consolidation.VERBS + curator_verb.VERBS)
    for spec in specs + parity.parity_verbs(specs):  # the original's verbs we lack by name (issue #17)
        p = sub.add_parser(spec.name, help=spec.help, description=spec.help)
        _common(p)
        spec.arguments(p)
        p.set_defaults(run=spec.run)
    # Handlers that list the verbs (completions, man) read them here rather than importing this module back.
    parser.set_defaults(all_verbs={action.dest: action.help or "" for action in sub._choices_actions})
    describe(parser)
    return parser


def _config(args: argparse.Namespace) -> NodeConfig:
    """The node's settings: options and their environment variables first, then what the data directory
    remembers of the node it belongs to (``node.json``), then the defaults."""
    data_dir = args.data_dir or (str(Path(args.db).expanduser().with_suffix("")) if args.db else None)
    config = NodeConfig.from_env(data_dir=data_dir, log_url=args.log_url, stream=args.stream,
                                 replicas=args.replicas, quorum=_quorum(args))
    tls = _log_tls(args)
    config = replace(config, log_tls=tls) if tls else config
    if args.read_model:
        config = replace(config, read_model_url=args.read_model)
    config = _embedding_config(args, config)
    record = NodeRecord.load(config.data_dir)
    return record.fill(config, _explicit(args)) if record else config


def _embedding_config(args: argparse.Namespace, config: NodeConfig) -> NodeConfig:
    """``--embedder`` and the ``--embed-*`` options over their environment variables.

    Raises:
        ValidationError: a value that does not parse.
    """
    given = {name: getattr(args, f"embed_{name}", None)
             for name in ("model", "dim", "api_key_file", "timeout", "batch", "device")}
    try:
        settings = EmbedderSettings.from_env(given)
    except EmbedderConfigError as exc:
        raise ValidationError(str(exc)) from None
    return replace(config, embedder=args.embedder or config.embedder, embedding=settings)


def _explicit(args: argparse.Namespace) -> frozenset[str]:
    """The settings this invocation names, by option or environment variable."""
    given = {
        "log_url": args.log_url is not None or "AI_MEMORY_LOG" in os.environ,
        "stream": args.stream is not None or "AI_MEMORY_STREAM" in os.environ,
        "replicas": args.replicas is not None or "AI_MEMORY_REPLICAS" in os.environ,
        "read_model_url": bool(args.read_model) or "AI_MEMORY_READ_MODEL" in os.environ,
        "log_tls": any(getattr(args, n, None) or os.environ.get(f"AI_MEMORY_{n.upper()}")
                       for n in ("log_cert", "log_key", "log_ca")),
    }
    return frozenset(name for name, named in given.items() if named)


def _warn_about_data_dir(args: argparse.Namespace, data_dir: Path) -> None:
    """Say when this verb works on another data directory than the server(s) running here: the CLI needs no
    server, so it would otherwise read and write a different store without a word."""
    if args.verb in ("serve", "mcp"):
        return
    here = str(data_dir.resolve())
    servers = running_servers()
    if servers and all(s.data_dir != here for s in servers):
        listed = "; ".join(f"pid {s.pid} at {s.url} serves {s.data_dir}" for s in servers)
        print(f"ai-memory: warning: this command uses the data directory {here}, but a server runs on another "
              f"({listed}); pass --data-dir to work on the server's memories", file=sys.stderr)


def _log_tls(args: argparse.Namespace) -> TlsFiles | None:
    paths = [getattr(args, name, None) or os.environ.get(f"AI_MEMORY_LOG_{name.upper()}") for name in
             ("log_cert", "log_key", "log_ca")]
    if not any(paths):
        return None
    if not all(paths):
        raise ValidationError("--log-cert, --log-key and --log-ca go together")
    cert, key, ca = (Path(p).expanduser() for p in paths if p)
    return TlsFiles(cert, key, ca)


def _setting(value: int | None, env: str, default: int) -> int:
    return value if value is not None else int(os.environ.get(env, str(default)))


def _quorum(args: argparse.Namespace) -> QuorumConfig:
    replicas = _setting(args.replicas, "AI_MEMORY_REPLICAS", 1)
    return QuorumConfig(writes=_setting(args.quorum_writes, "AI_MEMORY_QUORUM_WRITES", 1),
                        nodes=_setting(args.cluster_size, "AI_MEMORY_CLUSTER_SIZE", replicas),
                        timeout_ms=_setting(args.quorum_timeout_ms, "AI_MEMORY_QUORUM_TIMEOUT_MS", 2000),
                        regions=_setting(args.quorum_regions, "AI_MEMORY_QUORUM_REGIONS", 1))


def emit(value: Any) -> None:
    print(json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:2] == ["cluster", "up"]:
        # The local launcher has options of its own that clash with every verb's (--port, --quorum…).
        from infra.cluster.local import main as launch

        return launch(argv[2:], prog="ai-memory cluster up")
    args = build_parser().parse_args(argv)
    new_dir: Path | None = None
    try:
        config = _config(args)
        new_dir = None if config.data_dir.exists() else config.data_dir
        _warn_about_data_dir(args, config.data_dir)
        code: int = eventloop.run(args.run(args, config), fast=args.verb == "serve")
        return code
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        reply = reply_for(exc)
        # A command error's own text is the fullest (quorum_not_met's body keeps only the original's code).
        message = str(exc) if isinstance(exc, CommandError) else reply.body.get("error", str(exc))
        if getattr(args, "json", False):
            emit(reply.body)
        # A 2xx "error" is an outcome, not a failure (an action now pending approval: exit 0).
        print(f"ai-memory: {'error: ' if reply.status >= 400 else ''}{message}", file=sys.stderr)
        return getattr(exc, "exit_code", reply.exit_code)
    finally:
        if new_dir is not None and new_dir.is_dir():
            print(f"ai-memory: created the data directory {new_dir} (pass --data-dir or set AI_MEMORY_HOME "
                  "to use another)", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())

