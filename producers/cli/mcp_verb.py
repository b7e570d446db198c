"""``ai-memory mcp``: the MCP server on stdio, over the same data dir / log as ``serve`` and the other verbs."""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING

from producers.cli.spec import VerbSpec
from producers.errors import ValidationError
from producers.runtime.node import NodeConfig

if TYPE_CHECKING:
    from producers.tools.registry import Profile

__all__ = ["VERBS", "profile_arg", "resolve_profile"]

TIERS = ("keyword", "semantic", "smart", "autonomous")


def profile_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", default=None,
                   help="MCP tool profile: core (default), graph, admin, power, full, or a comma list of profiles "
                        "and families (env AI_MEMORY_PROFILE)")


def resolve_profile(flag: str | None) -> Profile:
    """The profile from ``--profile``, else ``AI_MEMORY_PROFILE``, else core; a bad name is invalid input."""
    # Imported here, not at the top: the MCP SDK is heavy, and only `mcp` and `serve` need it.
    from producers.tools.registry import Profile, ProfileError

    try:
        return Profile.parse(flag if flag is not None else os.environ.get("AI_MEMORY_PROFILE"))
    except ProfileError as exc:
        raise ValidationError(str(exc)) from None


def _mcp_args(p: argparse.ArgumentParser) -> None:
    profile_arg(p)
    # Accepted so that an agent configured for the original (`mcp --tier semantic`) starts unchanged; what is
    # loaded here is what is installed and configured (capabilities report it), not what the tier name promises.
    p.add_argument("--tier", choices=TIERS, default="semantic", help=argparse.SUPPRESS)


async def _mcp(args: argparse.Namespace, config: NodeConfig) -> int:
    from producers.mcp import run_stdio

    await run_stdio(config, resolve_profile(args.profile))
    return 0


VERBS = [VerbSpec("mcp", "run the MCP server on stdio (JSON-RPC; for agents such as Claude Desktop or Claude Code)",
                  _mcp_args, _mcp)]
