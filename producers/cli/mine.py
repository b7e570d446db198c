"""``ai-memory mine PATH --format claude|chatgpt|slack``: conversation exports of the common chat tools, one
memory per conversation (the original's ``mine``: its formats, defaults, titles and content layout).

- ``claude``: the claude.ai export's ``conversations.json`` (a JSON array) or the original's JSON-lines form; each
  conversation ``{uuid, name, created_at, chat_messages: [{sender, text | content, created_at}]}``;
- ``chatgpt``: ChatGPT's ``conversations.json`` (``[{id, title, create_time, mapping: {node: {message: {author:
  {role}, content: {parts}, create_time}}}}]``, messages in ``create_time`` order, system messages left out);
- ``slack``: an export directory, one folder per channel holding one JSON file per day.

Content is ``[role]: text`` lines up to 64 KiB; the title is the conversation's name, else its first user message
(100 characters). Memories are stored through the service (``memory.stored`` events), tagged ``mine-<format>``
with ``metadata.mined_from`` (the original puts ``mine-<format>`` in ``source``; ours is ``import``, as our
``source`` values are a closed list), confidence 0.8. A conversation mined twice is reported, not duplicated.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from producers.cli.spec import VerbSpec, emit, open_node
from producers.errors import ConflictError, ValidationError
from producers.identity.agents import resolve_cli_agent
from producers.input.commands import CreateCommand
from producers.runtime.node import NodeConfig

__all__ = ["FORMATS", "VERBS", "Conversation", "parse_export", "to_create"]

FORMATS = ("claude", "chatgpt", "slack")
MAX_CONTENT = 65_536
_NAMESPACES = {"claude": "claude-export", "chatgpt": "chatgpt-export", "slack": "slack-export"}


@dataclass
class Conversation:
    id: str
    title: str | None
    created_at: str | None
    messages: list[tuple[str, str]] = field(default_factory=list)


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        parts = [p if isinstance(p, str) else p.get("text") for p in value if isinstance(p, str | dict)]
        return "\n".join(p for p in parts if isinstance(p, str))
    if isinstance(value, dict):
        if isinstance(value.get("parts"), list):
            return _text(value["parts"])
        return value["text"] if isinstance(value.get("text"), str) else ""
    return ""


def _load_json(path: Path) -> list[Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValidationError(f"failed to read export: {path}: {exc}") from None
    try:
        data = json.loads(text)
        return data if isinstance(data, list) else [data]
    except json.JSONDecodeError:
        pass
    out = []
    for n, line in enumerate(text.splitlines(), 1):  # the original's JSON-lines form
        if line.strip():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                raise ValidationError(f"invalid JSON on line {n} of {path}") from None
    return out


def _claude(path: Path) -> list[Conversation]:
    convs = []
    for i, c in enumerate(v for v in _load_json(path) if isinstance(v, dict)):
        conv = Conversation(str(c.get("uuid") or f"claude-{i}"), c.get("name"), c.get("created_at"))
        for m in c.get("chat_messages") or []:
            role = m.get("sender") or m.get("role") or "unknown"
            text = _text(m.get("text")) or _text(m.get("content"))
            if text:
                conv.messages.append(("user" if role == "human" else str(role), text))
        convs.append(conv)
    return convs


def _chatgpt(path: Path) -> list[Conversation]:
    convs = []
    for i, c in enumerate(v for v in _load_json(path) if isinstance(v, dict)):
        created = c.get("create_time")
        conv = Conversation(str(c.get("id") or f"chatgpt-{i}"), c.get("title"),
                            _iso(created) if isinstance(created, int | float) else None)
        nodes = [n.get("message") for n in (c.get("mapping") or {}).values() if isinstance(n, dict)]
        msgs = sorted((m for m in nodes if isinstance(m, dict)), key=lambda m: m.get("create_time") or 0)
        for m in msgs:
            role = m.get("role") or (m.get("author") or {}).get("role") or "unknown"
            text = _text(m.get("content")) or _text(m.get("text"))
            if role != "system" and text:
                conv.messages.append((str(role), text))
        convs.append(conv)
    return convs


def _slack(path: Path) -> list[Conversation]:
    if not path.is_dir():
        raise ValidationError(f"Slack export path must be a directory: {path}")
    convs = []
    for channel in sorted(p for p in path.iterdir() if p.is_dir()):
        conv = Conversation(f"slack-{channel.name}", f"#{channel.name}", None)
        for day in sorted(channel.glob("*.json")):
            for m in _load_json(day):
                text = m.get("text") if isinstance(m, dict) else None
                if isinstance(text, str) and text:
                    if conv.created_at is None and isinstance(m.get("ts"), str):
                        conv.created_at = _iso(float(m["ts"]))
                    conv.messages.append((str(m.get("user") or m.get("username") or "unknown"), text))
        convs.append(conv)
    return convs


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).isoformat()


def parse_export(path: Path, fmt: str) -> list[Conversation]:
    if not path.exists():
        raise ValidationError(f"failed to read {fmt} export: {path} does not exist")
    return {"claude": _claude, "chatgpt": _chatgpt, "slack": _slack}[fmt](path)


def to_create(conv: Conversation, fmt: str, *, namespace: str, tier: str) -> CreateCommand | None:
    if not conv.messages:
        return None
    first = next((text for role, text in conv.messages if role in ("user", "human")), conv.messages[0][1])
    title = (conv.title or first or f"Conversation {conv.id}")[:100].strip() or f"Conversation {conv.id}"
    content = ""
    for role, text in conv.messages:
        line = f"[{role}]: {text}\n"
        if len(content) + len(line) > MAX_CONTENT:
            break
        content += line
    if not content:
        return None
    return CreateCommand(title=title, content=content, tier=tier, namespace=namespace, tags=[f"mine-{fmt}"],
                         confidence=0.8, source="import",
                         metadata={"mined_from": f"mine-{fmt}", "conversation_id": conv.id,
                                   "conversation_created_at": conv.created_at})


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", help="the export file (claude, chatgpt) or directory (slack)")
    p.add_argument("--format", "-f", required=True, choices=FORMATS,
                   help="the chat tool whose export PATH is")
    p.add_argument("--namespace", "-n", help="default: claude-export, chatgpt-export or slack-export")
    p.add_argument("--tier", "-t", default="mid", choices=["short", "mid", "long"])
    p.add_argument("--min-messages", type=int, default=3, help="skip shorter conversations (default 3)")
    p.add_argument("--dry-run", action="store_true", help="list what would be stored; store nothing")


async def _run(args: argparse.Namespace, config: NodeConfig) -> int:
    namespace = args.namespace or _NAMESPACES[args.format]
    convs = [c for c in parse_export(Path(args.path).expanduser(), args.format)
             if len(c.messages) >= args.min_messages]
    commands = [(c, to_create(c, args.format, namespace=namespace, tier=args.tier)) for c in convs]
    if args.dry_run:
        emit({"dry_run": True, "namespace": namespace, "count": len(commands),
              "conversations": [{"title": cmd.title, "messages": len(c.messages)} for c, cmd in commands if cmd]})
        return 0
    imported, skipped, duplicates = 0, 0, 0
    agent = resolve_cli_agent(args.agent_id)
    async with open_node(config) as node:
        for _, cmd in commands:
            if cmd is None:
                skipped += 1
                continue
            try:
                await node.service.store(cmd, agent_id=agent, on_conflict="error")
                imported += 1
            except ConflictError:
                duplicates += 1  # mined before: the same title in the namespace
    emit({"imported": imported, "skipped": skipped, "already_present": duplicates, "namespace": namespace,
          "format": args.format})
    return 0


VERBS: list[VerbSpec] = [
    VerbSpec("mine", "import conversation exports (claude, chatgpt, slack) as memories, one per conversation",
             _arguments, _run),
]
