"""``ai-memory curator``: the original's curator verb. ``--once`` runs one cycle (``producers.lifecycle.curator``)
and prints its report (text, or JSON with ``--json``); ``--daemon`` runs a cycle every ``--interval-secs`` until
stopped. The LLM is the OpenAI-compatible endpoint of ``AI_MEMORY_LLM_URL``; without one a cycle reports
``no LLM client configured`` and changes nothing, as the original. ``--reflect`` and the rollback options say why
they do not apply here and exit 2.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from producers.cli.spec import VerbSpec, emit, open_node
from producers.errors import ValidationError
from producers.identity.agents import resolve_cli_agent
from producers.lifecycle.curator import CuratorConfig, run_once
from producers.llm.client import LlmClient, open_llm
from producers.runtime.node import Node, NodeConfig

__all__ = ["VERBS", "cycles"]

#: Options of the original's curator that have no counterpart here, and why.
_UNDO = ("every curator change here is a memory.updated event in the log (a memory's history is on its /ui page); "
         "undo one with `ai-memory update`")
NOT_HERE = {
    "reflect": "the original's reflection pass writes reflections by its own curator rules; here reflections are "
               "written with memory_reflect (`ai-memory reflect`)",
    "rollback": _UNDO,
    "rollback_last": _UNDO,
}
_LINES = ("started_at", "completed_at", "cycle_duration_ms", "memories_scanned", "memories_eligible",
          "operations_attempted", "auto_tagged", "contradictions_found", "operations_skipped_cap")


def _arguments(p: argparse.ArgumentParser) -> None:
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--once", action="store_true", help="run one cycle and print its report")
    mode.add_argument("--daemon", action="store_true", help="run a cycle every --interval-secs until stopped")
    p.add_argument("--interval-secs", type=int, default=3600, help="seconds between daemon cycles (default 3600)")
    p.add_argument("--max-ops", type=int, default=100, help="memories curated per cycle at most (default 100)")
    p.add_argument("--dry-run", action="store_true", help="ask the LLM and count, change nothing")
    p.add_argument("--include-namespace", action="append", default=[], help="only these namespaces (repeatable)")
    p.add_argument("--exclude-namespace", action="append", default=[], help="not these namespaces (repeatable)")
    for name in NOT_HERE:
        p.add_argument(f"--{name.replace('_', '-')}", nargs="?", const=True, default=None,
                       help=f"not here: {NOT_HERE[name]}")
    for name in ("namespace", "max-depth"):
        p.add_argument(f"--{name}", help="with --reflect (not here)")
    p.add_argument("--all-namespaces", action="store_true", help="with --reflect (not here)")


def _print(report: dict[str, Any]) -> None:
    print("curator cycle report")
    for name in _LINES:
        print(f"  {name + ':':<19}{report[name]}")
    errors: list[str] = report["errors"]
    print(f"  {'errors:':<19}{len(errors)}")
    print(f"  {'dry_run:':<19}{report['dry_run']}")
    for error in errors:
        print(f"    - {error}")


async def cycles(node: Node, llm: LlmClient | None, cfg: CuratorConfig, *, agent: str, interval: float,
                 as_json: bool, count: int | None = None) -> None:
    """Run ``count`` cycles (None: until cancelled), printing each report."""
    done = 0
    while count is None or done < count:
        report = await run_once(node, llm, cfg, agent=agent)
        if as_json:
            emit(report)
        else:
            _print(report)
        done += 1
        if count is None or done < count:
            await asyncio.sleep(interval)


async def _run(args: argparse.Namespace, config: NodeConfig) -> int:
    for name, why in NOT_HERE.items():
        if getattr(args, name) is not None or (name == "reflect" and args.all_namespaces):
            raise ValidationError(f"curator --{name.replace('_', '-')} does not apply here: {why}")
    if not args.once and not args.daemon:
        raise ValidationError("curator requires --once, --daemon, --reflect, --rollback <id>, or --rollback-last N")
    if args.max_ops < 1 or args.interval_secs < 1:
        raise ValidationError("--max-ops and --interval-secs must be at least 1")
    cfg = CuratorConfig(args.max_ops, args.dry_run, tuple(args.include_namespace), tuple(args.exclude_namespace))
    llm = open_llm()
    try:
        async with open_node(config) as node:
            await cycles(node, llm, cfg, agent=resolve_cli_agent(args.agent_id), interval=args.interval_secs,
                         as_json=args.json, count=1 if args.once else None)
    finally:
        if llm is not None:
            await llm.aclose()
    return 0


VERBS: list[VerbSpec] = [
    VerbSpec("curator", "the original's curator: --once runs one cycle (LLM auto-tags and contradiction flags as "
             "memory.updated events; AI_MEMORY_LLM_URL), --daemon repeats it every --interval-secs", _arguments,
             _run),
]
