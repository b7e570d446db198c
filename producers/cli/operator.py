"""The operator verbs users reach for first (issue #17): ``doctor`` (checks a node and its data directory and
says what to fix), ``install`` (writes the MCP entry into the common MCP clients' config files, with a dry run)
and ``completions`` (a shell completion script)."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from producers.cli.help import version
from producers.cli.spec import VerbSpec, emit, open_node
from producers.errors import ValidationError
from producers.memory.wire import embedder_status
from producers.runtime.node import NodeConfig
from producers.runtime.running import running_servers

__all__ = ["CLIENT_CONFIGS", "VERBS", "completion_script", "mcp_entry"]


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str | None = None


def _writable(data_dir: Path) -> Check:
    if not data_dir.exists():
        return Check("data directory", False, f"{data_dir} does not exist",
                     "run any verb with --data-dir (or AI_MEMORY_HOME) to create it, e.g. `ai-memory stats`")
    if not os.access(data_dir, os.W_OK):
        return Check("data directory", False, f"{data_dir} is not writable",
                     f"fix its permissions: chmod u+w {data_dir}")
    return Check("data directory", True, str(data_dir))


async def _node_checks(config: NodeConfig) -> list[Check]:
    checks = []
    async with open_node(config) as node:
        ends = await node.log.end_offsets()
        checks.append(Check("event log", True, f"{node.log.url}: end offsets {ends}"))
        position = node.runner.position
        lag = sum(max(0, end - position.get(p, 0)) for p, end in ends.items())
        checks.append(Check("read model", lag == 0, f"projector at {position}, {lag} events behind the log",
                            None if lag == 0 else "run `ai-memory rebuild` if the lag does not shrink"))
        rejected = node.model.rejected_count()
        checks.append(Check("signatures", rejected == 0, f"{rejected} events refused by the projector",
                            None if rejected == 0 else "run `ai-memory verify` to list the events that do not verify"))
        status = embedder_status(node)
        checks.append(Check("embedder", True, "semantic recall on" if status["embedder_ready"]
                            else f"keyword only ({status.get('embedder_error') or 'AI_MEMORY_EMBEDDER=off'})"))
    return checks


def _server_check(data_dir: Path) -> Check:
    servers = running_servers()
    here = str(data_dir.resolve())
    others = [s for s in servers if s.data_dir != here]
    if servers and len(others) == len(servers):
        listed = "; ".join(f"{s.url} serves {s.data_dir}" for s in others)
        return Check("servers", False, f"no server serves this data directory ({listed})",
                     "pass the server's --data-dir to CLI verbs, or start `ai-memory serve` on this one")
    return Check("servers", True, f"{len(servers)} running here" if servers else "none running (the CLI needs none)")


async def _doctor(args: argparse.Namespace, config: NodeConfig) -> int:
    checks = [_writable(config.data_dir)]
    if checks[0].ok:
        checks += await _node_checks(config)
    checks.append(_server_check(config.data_dir))
    if args.json:
        emit({"ok": all(c.ok for c in checks), "checks": [c.__dict__ for c in checks]})
    else:
        for c in checks:
            print(f"{'ok ' if c.ok else 'FIX'}  {c.name}: {c.detail}" + (f"\n     -> {c.fix}" if c.fix else ""))
    return 0 if all(c.ok for c in checks) else 1


#: Where each MCP client keeps its servers (``mcpServers``), per platform.
CLIENT_CONFIGS: dict[str, dict[str, str]] = {
    "claude-desktop": {"darwin": "~/Library/Application Support/Claude/claude_desktop_config.json",
                       "linux": "~/.config/Claude/claude_desktop_config.json",
                       "win32": "~/AppData/Roaming/Claude/claude_desktop_config.json"},
    "claude-code": {"darwin": "~/.claude.json", "linux": "~/.claude.json", "win32": "~/.claude.json"},
    "cursor": {"darwin": "~/.cursor/mcp.json", "linux": "~/.cursor/mcp.json", "win32": "~/.cursor/mcp.json"},
}


def mcp_entry(data_dir: Path, profile: str) -> dict[str, Any]:
    command = shutil.which("ai-memory") or str(Path(sys.executable).with_name("ai-memory"))
    return {"command": command, "args": ["mcp", "--data-dir", str(data_dir), "--profile", profile]}


def _install_one(client: str, entry: dict[str, Any], name: str, *, dry_run: bool) -> dict[str, Any]:
    path = Path(CLIENT_CONFIGS[client].get(sys.platform, CLIENT_CONFIGS[client]["linux"])).expanduser()
    current: dict[str, Any] = {}
    if path.exists():
        try:
            current = json.loads(path.read_text(encoding="utf-8") or "{}")
        except json.JSONDecodeError as exc:
            raise ValidationError(f"{path} is not valid JSON ({exc}); fix or move it, then run install again") from None
        if not isinstance(current, dict):
            raise ValidationError(f"{path} does not hold a JSON object")
    listed = current.get("mcpServers")
    servers: dict[str, Any] = listed if isinstance(listed, dict) else {}
    updated = {**current, "mcpServers": {**servers, name: entry}}
    changed = servers.get(name) != entry
    if changed and not dry_run:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(updated, indent=2) + "\n", encoding="utf-8")
        tmp.replace(path)  # atomic: a client never reads half a file
    return {"client": client, "path": str(path), "changed": changed, "written": changed and not dry_run,
            "entry": entry}


async def _install(args: argparse.Namespace, config: NodeConfig) -> int:
    clients = list(CLIENT_CONFIGS) if args.client == "all" else [args.client]
    entry = mcp_entry(config.data_dir, args.profile)
    results = [_install_one(c, entry, args.name, dry_run=args.dry_run) for c in clients]
    if args.json or args.dry_run:
        emit({"dry_run": args.dry_run, "results": results})
    else:
        for r in results:
            print(f"{r['client']}: {'wrote' if r['written'] else 'already set in'} {r['path']}")
    return 0


def completion_script(shell: str, verbs: list[str]) -> str:
    words = " ".join(sorted(verbs))
    if shell == "bash":
        return ("_ai_memory() {\n  local cur=${COMP_WORDS[COMP_CWORD]}\n  if [ \"$COMP_CWORD\" -eq 1 ]; then\n"
                f"    COMPREPLY=($(compgen -W \"{words}\" -- \"$cur\"))\n  fi\n}}\ncomplete -F _ai_memory ai-memory\n")
    if shell == "zsh":
        return f"#compdef ai-memory\n_arguments '1: :({words})' '*::arg:_files'\n"
    return "".join(f"complete -c ai-memory -n __fish_use_subcommand -a {v}\n" for v in sorted(verbs))


async def _completions(args: argparse.Namespace, config: NodeConfig) -> int:
    print(completion_script(args.shell, list(args.all_verbs)), end="")
    return 0


def _roff(text: str) -> str:
    """``text`` safe in a roff paragraph: backslashes escaped, no line read as a request."""
    text = text.replace("\\", "\\e")
    return "\\&" + text if text.startswith((".", "'")) else text


def man_page(verbs: dict[str, str], version: str) -> str:
    """The ai-memory(1) manual page (roff): every verb with its help, as the original's ``man`` prints."""
    lines = [f'.TH AI-MEMORY 1 "" "{_roff(version)}" "User Commands"', ".SH NAME",
             "ai-memory \\- an event-sourced memory for AI agents (HTTP API, MCP server, CLI)", ".SH SYNOPSIS",
             "\\fBai-memory\\fR \\fIVERB\\fR [\\fIOPTIONS\\fR]", ".SH DESCRIPTION",
             "Every verb takes \\fB--data-dir\\fR (env AI_MEMORY_HOME, default ~/.ai-memory), \\fB--log\\fR, "
             "\\fB--json\\fR and \\fB--agent-id\\fR; \\fBai-memory VERB --help\\fR lists a verb's options with "
             "their defaults.", ".SH VERBS"]
    for name, text in sorted(verbs.items()):
        lines += [".TP", f"\\fB{_roff(name)}\\fR", _roff(text)]
    lines += [".SH EXIT STATUS", "0 ok, 1 internal error, 2 invalid input, 3 not found, 4 conflict, 5 auth, "
              "6 unavailable, 7 another log than the read model's, 8 verify found bad events or a chain break."]
    return "\n".join(lines) + "\n"


async def _man(args: argparse.Namespace, config: NodeConfig) -> int:
    print(man_page(args.all_verbs, f"ai-memory {version()}"), end="")
    return 0


def _doctor_args(p: argparse.ArgumentParser) -> None:
    pass


def _install_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--client", choices=[*CLIENT_CONFIGS, "all"], default="all", help="which client (default all)")
    p.add_argument("--profile", default="core", help="the MCP profile the entry loads (default core)")
    p.add_argument("--name", default="memory", help="the server's name in the client's config (default memory)")
    p.add_argument("--dry-run", action="store_true", help="print what would be written; change nothing")


def _completion_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("shell", choices=["bash", "zsh", "fish"], help="the shell to complete for")


VERBS: list[VerbSpec] = [
    VerbSpec("doctor", "check this node and its data directory (log, read model lag, refused events, embedder, "
             "servers) and say what to fix; exit 1 when something needs fixing", _doctor_args, _doctor),
    VerbSpec("install", "add this node's MCP server to Claude Desktop, Claude Code and Cursor config files "
             "(--dry-run to see the change first)", _install_args, _install),
    VerbSpec("completions", "print a shell completion script: ai-memory completions bash|zsh|fish",
             _completion_args, _completions),
    VerbSpec("man", "print the ai-memory(1) manual page (roff; ai-memory man | man -l -)", lambda p: None, _man),
]
