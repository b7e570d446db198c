"""The graph tools over MCP beyond the one-call-each table (test_mcp_tools.py): a signed link verified, time
travel and visibility arguments, the depth limits, relation names, and entity idempotence."""

from __future__ import annotations

import json
from typing import Any

import mcp_types as types
from mcp import Client

from producers.mcp import McpApp
from producers.runtime.node import Node
from producers.tools.registry import Profile
from schemas import load_or_create_node_key

BOTH_READ_MODELS = True


async def call(client: Client, name: str, args: dict[str, Any]) -> tuple[Any, bool]:
    result = await client.call_tool(name, args)
    block = result.content[0]
    assert isinstance(block, types.TextContent)
    return (block.text if result.is_error else json.loads(block.text)), bool(result.is_error)


async def ok(client: Client, name: str, args: dict[str, Any]) -> Any:
    answer, is_error = await call(client, name, args)
    assert not is_error, answer
    return answer


async def test_graph_tools_over_mcp(node: Node) -> None:
    load_or_create_node_key(node.config.data_dir / "keys", "alice")
    server = McpApp(node, Profile.parse("graph")).build()
    async with Client(server, client_info=types.Implementation(name="pytest-graph", version="1")) as client:
        ids = [(await ok(client, "memory_store", {"title": t, "content": t, "namespace": "team/x",
                                                    "scope": "team", "format": "json"}))["id"] for t in "abc"]
        a, b, c = ids
        signed = await ok(client, "memory_link", {"source_id": a, "target_id": b, "agent_id": "alice"})
        assert signed["attest_level"] == "self_signed"
        verified = await ok(client, "memory_verify", {"source_id": a, "target_id": b})
        assert verified["signature_verified"] is True and verified["signed_by"] == "alice"
        offset = (await node.log.end_offsets())["ai-memory"]
        await ok(client, "memory_link", {"source_id": b, "target_id": c, "relation": "supersedes"})
        now = await ok(client, "memory_kg_query", {"source_id": a, "max_depth": 5})
        assert now["paths"] == [f"{a}->{b}", f"{a}->{b}->{c}"]
        then = await ok(client, "memory_kg_query", {"source_id": a, "max_depth": 5, "as_of": offset})
        assert then["paths"] == [f"{a}->{b}"]
        hidden = await ok(client, "memory_kg_query", {"source_id": a, "max_depth": 5, "as_agent": "other/y"})
        assert hidden["count"] == 0
        seen = await ok(client, "memory_kg_query", {"source_id": a, "max_depth": 5, "as_agent": "team/y"})
        assert seen["count"] == 2
        paths = await ok(client, "memory_find_paths", {"source_id": c, "target_id": a, "as_of": offset})
        assert paths["paths"] == []
        assert (await ok(client, "memory_find_paths", {"source_id": c, "target_id": a}))["paths"] == [[c, b, a]]

        text, is_error = await call(client, "memory_kg_query", {"source_id": a, "max_depth": 6})
        assert is_error and "max_depth=6 exceeds supported depth=5" in text
        text, is_error = await call(client, "memory_find_paths", {"source_id": a, "target_id": c, "max_depth": 8})
        assert is_error and "max_depth=8 exceeds supported depth=7" in text
        text, is_error = await call(client, "memory_link", {"source_id": a, "target_id": c, "relation": "likes"})
        assert is_error and "invalid relation 'likes'" in text
        text, is_error = await call(client, "memory_verify", {"source_id": a, "target_id": c})
        assert is_error and "link not found" in text

        first = await ok(client, "memory_entity_register", {"canonical_name": "Kafka", "namespace": "team/x",
                                                            "aliases": ["kafka"]})
        second = await ok(client, "memory_entity_register", {"canonical_name": "Kafka", "namespace": "team/x",
                                                             "aliases": ["apache kafka"]})
        assert second["entity_id"] == first["entity_id"] and second["created"] is False
        found = await ok(client, "memory_entity_get_by_alias", {"alias": "apache kafka", "namespace": "team/x"})
        assert found["found"] is True and found["aliases"] == ["kafka", "apache kafka"]
