"""``VERB --help`` texts for the options many verbs share, and a formatter that shows each default.

Options that mean the same on every verb (``--namespace``, ``--limit``, …) are described once here; a verb
describes only what is its own, where it declares it. A test checks that no option is left without a text.
"""

from __future__ import annotations

import argparse
import importlib.metadata

__all__ = ["HelpFormatter", "describe", "version"]

SHARED_HELP: dict[str, str] = {
    "title": "the memory's title (at most 512 characters; unique within its namespace)",
    "content": "the memory's content",
    "tier": "short (hours), mid (a week) or long (kept)",
    "namespace": "namespace, a path such as acme/eng",
    "priority": "1 (low) to 10 (high)",
    "confidence": "0.0 to 1.0",
    "source": "where the memory comes from (user, claude, hook, api, cli, import, consolidation, system)",
    "ttl_secs": "expire after this many seconds",
    "expires_at": "expire at this time (RFC 3339)",
    "scope": "who may read it: private, team, unit, org or collective (the original's visibility prefixes)",
    "on_conflict": "when the title exists in the namespace: error (exit 4), merge into it, or store a new version",
    "tags": "comma-separated tags",
    "metadata": "a JSON object",
    "limit": "at most this many results",
    "offset": "skip this many results first",
    "min_priority": "only memories with at least this priority",
    "query": "the words to search for (all must match)",
    "context": "what to recall memories for (free text)",
    "budget_tokens": "stop adding memories once their content would exceed this many tokens",
    "pattern": "only memories matching any of these words (full-text, as the original)",
    "source_id": "the memory the link starts from",
    "target_id": "the memory the link points to",
    "action": "what to do",
    "host": "the address to listen on",
    "port": "the port to listen on",
    "gc_interval_secs": "seconds between garbage collections (expired memories go to the archive)",
    "summary": "the consolidated memory's content",
    "status": "only pending actions in this state",
    "remember": "approve: also approve the same action by the same agent from now on (once, session, always)",
    "prefix": "a namespace prefix ('' for all)",
    "depth": "how many namespace levels to show",
    "reason": "why, recorded in the event",
    "agent": "the agent id",
}


class HelpFormatter(argparse.HelpFormatter):
    """Appends ``(default: X)`` where an option has a default worth saying and its text does not give one."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if ("default" in text or default in (None, False, "", argparse.SUPPRESS) or not action.option_strings
                or isinstance(action, argparse._HelpAction | argparse._VersionAction)):
            return text
        return f"{text} (default: %(default)s)"


def describe(parser: argparse.ArgumentParser) -> None:
    """Give every action of ``parser`` (and its sub-verbs) without a text the shared one for its name."""
    parser.formatter_class = HelpFormatter
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                describe(sub)
        elif action.help is None and action.dest in SHARED_HELP:
            action.help = SHARED_HELP[action.dest]


def version() -> str:
    """This installation's version, as ``--version`` and the manual page print it."""
    try:
        return importlib.metadata.version("ai-memory-es")
    except importlib.metadata.PackageNotFoundError:
        return "unknown (not installed)"
