"""The original's v0.7.0 CLI verbs that this CLI lacks under the same name (issue #17), three kinds:

- **tool verbs** run one MCP tool on the data directory's node (the same handler MCP and HTTP run) and print
  its JSON: ``ai-memory kg-query '{"source_id": "…"}'`` or ``ai-memory kg-query --arg source_id=… --arg
  max_depth=2`` (values are JSON when they parse as JSON, else strings); grouped verbs take an action first
  (``ai-memory skill list``, ``ai-memory namespace get --arg namespace=team``);
- **aliases** of a verb we name differently (``logs`` is ``log``, ``verify-signed-events-chain`` is
  ``verify``, ``boot`` is the session-start context);
- **verbs that do not apply here or are not built yet**: their ``--help`` says why; running one prints the
  reason and exits 0 (does not apply) or 1 (not built yet).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from typing import Any

from producers.cli.spec import VerbSpec, emit, open_node
from producers.errors import ValidationError
from producers.identity.agents import resolve_cli_agent
from producers.llm.client import open_llm
from producers.runtime.node import NodeConfig
from producers.tools import HANDLERS, Handler, ToolContext
from producers.tools.client import ClientIdentity
from producers.tools.registry import Profile
from producers.tools.rules import add_rule

__all__ = ["parity_verbs", "tool_args"]

#: Original verb → the tool it runs.
TOOL_VERBS: dict[str, str] = {
    "kg-query": "memory_kg_query", "find-paths": "memory_find_paths", "kg-invalidate": "memory_kg_invalidate",
    "kg-timeline": "memory_kg_timeline", "entity-register": "memory_entity_register",
    "entity-get-by-alias": "memory_entity_get_by_alias", "recall-observations": "memory_recall_observations",
    "expand": "memory_expand_query", "check-duplicate": "memory_check_duplicate", "replay": "memory_replay",
    "reflect": "memory_reflect", "reflection-origin": "memory_reflection_origin",
    "dependents-of-invalidated": "memory_dependents_of_invalidated", "export-reflections": "memory_export_reflection",
    "subscribe": "memory_subscribe", "unsubscribe": "memory_unsubscribe",
    "list-subscriptions": "memory_list_subscriptions", "subscription-replay": "memory_subscription_replay",
    "subscription-dlq-list": "memory_subscription_dlq_list", "notify": "memory_notify", "inbox": "memory_inbox",
    "ingest-multistep": "memory_ingest_multistep", "quota-status": "memory_quota_status", "offload": "memory_offload",
    "deref": "memory_deref", "atomise": "memory_atomise", "calibrate": "memory_calibrate_confidence",
    "share": "memory_share", "boot": "memory_session_start",
}
#: Original verb → {action → tool}.
GROUP_VERBS: dict[str, dict[str, str | Handler]] = {
    "skill": {"register": "memory_skill_register", "list": "memory_skill_list", "get": "memory_skill_get",
              "resource": "memory_skill_resource", "export": "memory_skill_export",
              "promote": "memory_skill_promote_from_reflection", "compose": "memory_skill_compositional_context"},
    "persona": {"get": "memory_persona", "generate": "memory_persona_generate"},
    "rules": {"list": "memory_rule_list", "check": "memory_check_agent_action", "add": add_rule},
    "namespace": {"set": "memory_namespace_set_standard", "get": "memory_namespace_get_standard",
                  "clear": "memory_namespace_clear_standard"},
}
#: Original verb → our verb of the same job.
ALIASES: dict[str, str] = {"logs": "log", "verify-signed-events-chain": "verify", "audit": "verify"}
#: Verbs that have no meaning on this system, and why.
NOT_APPLICABLE: dict[str, str] = {
    "config": "settings are options and AI_MEMORY_* environment variables (see --help of each verb); there is "
              "no config file to edit",
    "shell": "there is no interactive shell; every verb is a one-shot command",
    "sync": "nodes share one event log (NATS or Kafka), so there is no peer-to-peer sync to run",
    "sync-daemon": "nodes share one event log (NATS or Kafka): every node applies every event, no sync daemon",
    "bench": "the benchmarks are `python -m bench.bench_mcp` and the other modules of bench/ in the checkout",
    "wrap": "this node does not wrap agent processes; point the agent's MCP config at `ai-memory mcp`",
    "governance": "it converts the original's config.toml permission rules; this node has no config file: "
                  "policies are namespace standards (`ai-memory namespace set`) and agent-action rules "
                  "(`ai-memory rules add`)",
    "recover-previous-session": "it reads the previous session's transcript; this node records no transcripts "
                                "(capture turns with memory_capture_turn and read them with `ai-memory boot`)",
}


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("args", nargs="?", default=None, help="the tool's arguments as one JSON object")
    p.add_argument("--arg", action="append", default=[], metavar="KEY=VALUE",
                   help="one argument (repeatable); VALUE is JSON when it parses, else a string")


def _group_arguments(actions: dict[str, str | Handler]) -> Any:
    def add(p: argparse.ArgumentParser) -> None:
        p.add_argument("action", choices=sorted(actions))
        _arguments(p)
    return add


def tool_args(args: argparse.Namespace) -> dict[str, Any]:
    """The tool's arguments from the JSON positional and the ``--arg KEY=VALUE`` options."""
    out: dict[str, Any] = {}
    if args.args is not None:
        try:
            parsed = json.loads(args.args)
        except json.JSONDecodeError as exc:
            raise ValidationError(f"the arguments must be a JSON object: {exc}") from None
        if not isinstance(parsed, dict):
            raise ValidationError("the arguments must be a JSON object")
        out.update(parsed)
    for item in args.arg:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ValidationError(f"--arg takes KEY=VALUE, not {item!r}")
        try:
            out[key.replace("-", "_")] = json.loads(raw)
        except json.JSONDecodeError:
            out[key.replace("-", "_")] = raw
    return out


async def _run_tool(tool: str | Handler, args: argparse.Namespace, config: NodeConfig) -> int:
    call = tool_args(args)
    call.setdefault("agent_id", resolve_cli_agent(args.agent_id))
    llm = open_llm()
    try:
        async with open_node(config) as node:
            ctx = ToolContext(node, Profile.parse("full"), ClientIdentity(None), llm)
            handler = HANDLERS[tool] if isinstance(tool, str) else tool
            emit(await handler(ctx, call))
    finally:
        if llm is not None:
            await llm.aclose()
    return 0


def _tool_verb(name: str, tool: str) -> VerbSpec:
    async def run(args: argparse.Namespace, config: NodeConfig) -> int:
        return await _run_tool(tool, args, config)
    return VerbSpec(name, f"the original's `{name}`: runs the {tool} tool here (JSON in, JSON out)", _arguments, run)


def _group_verb(name: str, actions: dict[str, str | Handler]) -> VerbSpec:
    async def run(args: argparse.Namespace, config: NodeConfig) -> int:
        return await _run_tool(actions[args.action], args, config)
    listed = ", ".join(f"{a} ({t if isinstance(t, str) else 'operator only'})" for a, t in sorted(actions.items()))
    return VerbSpec(name, f"the original's `{name}`: {listed}", _group_arguments(actions), run)


def _explained(name: str, reason: str, code: int) -> VerbSpec:
    async def run(args: argparse.Namespace, config: NodeConfig) -> int:
        print(f"ai-memory {name}: {reason}", file=sys.stderr if code else sys.stdout)
        return code
    return VerbSpec(name, reason, lambda p: None, run)


def parity_verbs(existing: list[VerbSpec]) -> list[VerbSpec]:
    """The original's verbs missing from ``existing`` (aliases reuse the existing verb's spec)."""
    by_name = {spec.name: spec for spec in existing}
    out = [_tool_verb(n, t) for n, t in TOOL_VERBS.items()] + [_group_verb(n, a) for n, a in GROUP_VERBS.items()]
    out += [replace(by_name[target], name=alias, help=f"the original's `{alias}`: here `{target}`. "
                                                      f"{by_name[target].help}")
            for alias, target in ALIASES.items()]
    out += [_explained(n, f"does not apply here: {why}", 0) for n, why in NOT_APPLICABLE.items()]
    return [spec for spec in out if spec.name not in by_name]
