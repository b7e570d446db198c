"""Agent-action rules (the original's #691): ``memory_rule_list`` and ``memory_check_agent_action`` over MCP and
HTTP, and the operator's ``ai-memory rules add`` (rule mutation is operator-only in the original too: there is
no MCP tool for it).

A rule is a memory in ``_rules`` (one ``memory.stored`` event: signed, replayed, on every node) whose
``metadata.rule`` holds ``{id, kind, matcher, severity, reason, namespace, created_by, created_at, enabled}``.
A check evaluates the enabled rules of the action's kind as the original's ``RuleEngine``: the first matching
``refuse`` wins, else the first ``warn``, else allow. Matchers: ``bash`` ``command_substring`` (a literal);
``filesystem_write`` ``glob`` (``*`` within a path segment, ``**`` across); ``network_request`` ``host``;
``process_spawn`` ``binary`` (+ ``args_contain``); ``custom`` ``kind`` (+ ``namespace_glob``, ``tier``,
``title_contains``). The original's ``disk_free_min_gib`` and operator rule signatures are not supported here.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

from producers.errors import ValidationError
from producers.identity.visibility import reading_as
from producers.input.commands import CreateCommand, parse_list_query
from producers.tools.base import Handler, ToolContext, opt_bool, opt_str, req_str

__all__ = ["HANDLERS", "RULES_NAMESPACE", "add_rule", "glob_matches"]

RULES_NAMESPACE = "_rules"
KINDS = ("bash", "filesystem_write", "network_request", "process_spawn", "custom")
SEVERITIES = ("refuse", "warn", "log")
_REGEX_META = set(".*+?[]()^$|\\")


def glob_matches(pattern: str, value: str) -> bool:
    """The original's glob: ``**`` matches anything, ``*`` anything but ``/``; every other character itself."""
    regex = "".join(".*" if part == "**" else "[^/]*" if part == "*" else re.escape(part)
                    for part in re.split(r"(\*\*|\*)", pattern))
    return re.fullmatch(regex, value, flags=re.DOTALL) is not None


def _action(kind: str, args: dict[str, Any]) -> dict[str, Any]:
    """The action to check, with the original's messages for a missing field."""
    needs = {"bash": "command", "filesystem_write": "path", "network_request": "host", "process_spawn": "binary"}
    if kind == "custom":
        custom = args.get("custom_kind", args.get("kind_inner"))
        if not isinstance(custom, str):
            raise ValidationError("custom kind requires `custom_kind`")
        return {"custom_kind": custom, "payload": args}
    if kind not in needs:
        raise ValidationError(f"unknown kind `{kind}`")
    value = args.get(needs[kind])
    if not isinstance(value, str):
        raise ValidationError(f"{kind} kind requires `{needs[kind]}`")
    raw_args = args.get("args")
    spawn_args = [a for a in raw_args if isinstance(a, str)] if isinstance(raw_args, list) else []
    return {needs[kind]: value, "args": spawn_args}


def _custom_matches(m: dict[str, Any], action: dict[str, Any]) -> bool:
    payload = action["payload"]
    checks = (("namespace_glob", "namespace", glob_matches), ("tier", "tier", lambda a, b: a == b),
              ("title_contains", "title", lambda a, b: a in b))
    for key, field, test in checks:
        if key in m:
            value = payload.get(field)
            if not isinstance(value, str) or not test(str(m[key]), value):
                return False
    return bool(m.get("kind") == action["custom_kind"])


def _matches(kind: str, m: dict[str, Any], action: dict[str, Any]) -> bool:
    if kind == "bash":
        needle = m.get("command_substring", m.get("command_regex"))
        return isinstance(needle, str) and needle in action["command"]
    if kind == "filesystem_write":
        return isinstance(m.get("glob"), str) and glob_matches(m["glob"], action["path"])
    if kind == "network_request":
        return bool(m.get("host") == action["host"])
    if kind == "process_spawn":
        needle = m.get("args_contain")
        return m.get("binary") == action["binary"] and (needle is None or str(needle) in " ".join(action["args"]))
    return _custom_matches(m, action)


async def _rules(ctx: ToolContext) -> list[dict[str, Any]]:
    # The operator's rules bind every agent, as the original's rules table: read by the node, not as the caller
    # (a rule is a private memory of its author, which an anonymous or other agent's read would leave out).
    with reading_as(None):
        found = await ctx.service.list_memories(parse_list_query({"namespace": RULES_NAMESPACE, "limit": 1000},
                                                                 max_limit=1000))
    rules = [m.metadata["rule"] for m in found if isinstance(m.metadata.get("rule"), dict)]
    return sorted(rules, key=lambda r: (r["created_at"], r["id"]))


async def rule_list(ctx: ToolContext, args: dict[str, Any]) -> Any:
    kind, enabled_only = opt_str(args, "kind"), opt_bool(args, "enabled_only")
    rows = [{**r, "signature_b64": None, "attest_level": "unsigned"} for r in await _rules(ctx)
            if (kind is None or r["kind"] == kind) and (r["enabled"] or not enabled_only)]
    return {"count": len(rows), "rules": rows}


async def check_agent_action(ctx: ToolContext, args: dict[str, Any]) -> Any:
    kind = req_str(args, "kind")
    action = _action(kind, args)
    agent = opt_str(args, "agent_id") or "anonymous:mcp"
    decision: dict[str, Any] = {"decision": "allow"}
    for rule in await _rules(ctx):
        if rule["kind"] != kind or not rule["enabled"] or not _matches(kind, json.loads(rule["matcher"]), action):
            continue
        if rule["severity"] == "refuse":
            decision = {"decision": "refuse", "rule_id": rule["id"], "reason": rule["reason"]}
            break
        if rule["severity"] == "warn" and decision["decision"] == "allow":
            decision = {"decision": "warn", "rule_id": rule["id"], "reason": rule["reason"]}
    return {"decision": decision, "kind": kind, "agent_id": agent}


async def add_rule(ctx: ToolContext, args: dict[str, Any]) -> Any:
    """The operator's ``rules add``: ``{id, kind, matcher (JSON object), severity, reason[, namespace, enabled]}``."""
    rule_id, kind, severity = req_str(args, "id"), req_str(args, "kind"), req_str(args, "severity")
    if kind not in KINDS:
        raise ValidationError(f"unknown kind `{kind}` (one of {', '.join(KINDS)})")
    if severity not in SEVERITIES:
        raise ValidationError(f"severity must be one of {', '.join(SEVERITIES)}")
    matcher = args.get("matcher")
    if not isinstance(matcher, dict):
        raise ValidationError("matcher must be a JSON object")
    needle = matcher.get("command_substring")
    if isinstance(needle, str) and (bad := next((c for c in needle if c in _REGEX_META), None)):
        raise ValidationError(f"command_substring rejects regex metacharacter {bad!r}: the matcher is a literal "
                              "substring match")
    agent, reason = ctx.agent_id(args), str(args.get("reason") or "")
    rule = {"id": rule_id, "kind": kind, "matcher": json.dumps(matcher, sort_keys=True), "severity": severity,
            "reason": reason, "namespace": opt_str(args, "namespace") or "_global",
            "created_by": agent, "created_at": int(time.time()), "enabled": opt_bool(args, "enabled", default=True)}
    cmd = CreateCommand(title=f"rule:{rule_id}", content=reason or f"{kind} rule {rule_id}", tier="long",
                        namespace=RULES_NAMESPACE, tags=["rule", kind], source="cli", metadata={"rule": rule},
                        on_conflict="error")
    await ctx.service.store(cmd, agent_id=agent)
    return {"added": True, "rule": rule}


HANDLERS: dict[str, Handler] = {"memory_rule_list": rule_list, "memory_check_agent_action": check_agent_action}
