"""The MCP surface under hostile arguments: every tool, every argument it declares, each hostile value; no
call may end in a server error (an ``internal server error`` result, logged as a tool failure).

Before issue #20's fixes, lone surrogates, NaN/Infinity, integers past 64 bits and deep nesting reached the
validators and the read models (and a 5,000-deep argument broke the error path itself).
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

from producers.mcp import McpApp
from producers.runtime.node import Node
from producers.tools.registry import Profile, all_tools


def _deep(n: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(n):
        value = [value]
    return value


HOSTILE: list[Any] = [10**30, -(10**30), float("inf"), float("nan"), "a\x00b", "\ud800", _deep(5000), True, [],
                      {}, "", 1.5, {"a": None}]


async def test_no_tool_fails_with_a_server_error(node: Node, caplog: pytest.LogCaptureFixture) -> None:
    app = McpApp(node, Profile.parse("full"))
    calls = 0
    with caplog.at_level(logging.WARNING, logger="ai_memory.mcp"):
        for tool in all_tools():
            schema = tool["inputSchema"]
            base = {name: "x" for name in schema.get("required", [])}
            for arg in schema.get("properties", {}):
                for value in HOSTILE:
                    text, _ = await app.call(tool["name"], {**base, arg: value})
                    calls += 1
                    assert not text.startswith(("internal", "storage error")), (tool["name"], arg, value, text)
    failures = [r.getMessage()[:200] for r in caplog.records if "failed" in r.getMessage()]
    assert failures == []
    assert calls > 1000  # the catalog was swept, not skipped


@pytest.mark.parametrize(("tool", "args", "message"), [
    ("memory_store", {"title": "\ud800", "content": "x"}, "surrogate"),
    ("memory_store", {"title": "t", "content": "x", "metadata": {"d": _deep(100)}}, "nesting depth"),
    ("memory_list", {"limit": 10**30}, "limit must be at most"),
    ("memory_recall", {"context": "a", "limit": float("nan")}, "JSON numbers must be finite"),
    ("memory_archive_purge", {"older_than_days": 10**30}, "older_than_days must be at most"),
    ("memory_archive_list", {"offset": 10**30}, "offset must be between"),
    ("memory_archive_list", {"offset": -(10**30)}, "offset must be between"),
])
async def test_hostile_arguments_get_a_clear_error(node: Node, tool: str, args: dict[str, Any], message: str) -> None:
    text, is_error = await McpApp(node, Profile.parse("full")).call(tool, args)
    assert is_error and message in text, text
