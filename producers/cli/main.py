"""``ai-memory``: the command line. Every verb runs on the same node code as the server.

Exit codes: 0 ok, 1 internal error, 2 invalid input, 3 not found, 4 conflict, 5 auth, 6 unavailable,
7 the read model belongs to another log (run ``ai-memory rebuild``), 8 the log holds events that do not verify.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from producers.cli import commands, logtools, mcp_verb
from producers.errors import reply_for
from producers.node import NodeConfig

__all__ = ["build_parser", "main"]

Verb = Callable[[argparse.Namespace, NodeConfig], Awaitable[int]]


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", help="data directory (env AI_MEMORY_HOME; default ~/.ai-memory)")
    parser.add_argument("--log", dest="log_url", default=None,
                        help="event log: sqlite:///path/log.db (default: <data-dir>/log.db), "
                             "nats://host:port[/stream] "
                             "or kafka://host:port[/topic] (env AI_MEMORY_LOG)")
    parser.add_argument("--stream", default=None, help="stream / topic name (default ai-memory)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--agent-id", help="acting agent id (env AI_MEMORY_AGENT_ID)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ai-memory", description="Persistent, event-sourced memory for AI agents. Every change is a signed "
        "event on a log; reads come from read models the projector builds from it.")
    # The original's global `--db FILE` (found in agents' MCP configs): here the data dir FILE without its suffix.
    parser.add_argument("--db", help=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    for spec in commands.VERBS + logtools.VERBS + mcp_verb.VERBS:
        p = sub.add_parser(spec.name, help=spec.help, description=spec.help)
        _common(p)
        spec.arguments(p)
        p.set_defaults(run=spec.run)
    return parser


def _config(args: argparse.Namespace) -> NodeConfig:
    data_dir = args.data_dir or (str(Path(args.db).expanduser().with_suffix("")) if args.db else None)
    return NodeConfig.from_env(data_dir=data_dir, log_url=args.log_url, stream=args.stream)


def emit(value: Any) -> None:
    print(json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = asyncio.run(args.run(args, _config(args)))
        return code
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        reply = reply_for(exc)
        message = reply.body.get("error", str(exc))
        if getattr(args, "json", False):
            emit(reply.body)
        print(f"ai-memory: error: {message}", file=sys.stderr)
        return getattr(exc, "exit_code", reply.exit_code)


if __name__ == "__main__":
    sys.exit(main())

