"""The lifecycle tools through the MCP client: archive round trip, consolidate (with and without an LLM summary),
promotion to an ancestor namespace (a clone with a derived_from link), notify and inbox."""

from __future__ import annotations

import json
from typing import Any

import httpx
import mcp_types as types
from mcp import Client
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from producers.llm.client import LlmClient, LlmConfig
from producers.mcp import McpApp
from producers.runtime.node import Node
from producers.tools.registry import Profile

# Every tool behaves the same on a SQLite and on a Postgres read model.
BOTH_READ_MODELS = True


def _client(node: Node, name: str = "pytest-agent", llm: LlmClient | None = None) -> Client:
    server = McpApp(node, Profile.parse("full"), llm=llm).build()
    return Client(server, client_info=types.Implementation(name=name, version="1"))


async def call(client: Client, name: str, args: dict[str, Any]) -> tuple[Any, bool]:
    result = await client.call_tool(name, {**args, "format": "json"})
    block = result.content[0]
    assert isinstance(block, types.TextContent)
    if result.is_error:
        return block.text, True
    return json.loads(block.text), False


async def ok(client: Client, name: str, args: dict[str, Any]) -> Any:
    answer, is_error = await call(client, name, args)
    assert not is_error, answer
    return answer


async def store(client: Client, title: str, **args: Any) -> str:
    memory_id: str = (await ok(client, "memory_store", {"title": title, "content": f"about {title}", **args}))["id"]
    return memory_id


async def test_archive_tools_round_trip(node: Node) -> None:
    async with _client(node) as c:
        memory_id = await store(c, "to archive", namespace="proj", tier="long")
        forgotten = await ok(c, "memory_forget", {"namespace": "proj"})
        assert forgotten == {"deleted": 1, "archived": True}
        listed = await ok(c, "memory_archive_list", {"namespace": "proj", "limit": 5})
        assert listed["count"] == 1 and listed["archived"][0]["archive_reason"] == "forget"
        assert await ok(c, "memory_archive_stats", {}) == {"archived_total": 1,
                                                            "by_namespace": [{"namespace": "proj", "count": 1}]}
        assert await ok(c, "memory_archive_restore", {"id": memory_id}) == {"restored": True, "id": memory_id}
        assert (await ok(c, "memory_get", {"id": memory_id}))["tier"] == "long"
        text, is_error = await call(c, "memory_archive_restore", {"id": memory_id})
        assert is_error and text == "not found in archive"
        await ok(c, "memory_forget", {"namespace": "proj"})
        assert await ok(c, "memory_archive_purge", {}) == {"purged": 1}
        assert (await ok(c, "memory_archive_list", {}))["count"] == 0


async def test_consolidate_tool(node: Node) -> None:
    async with _client(node) as c:
        a = await store(c, "a", tier="short")
        b = await store(c, "b", agent_id="other-agent")
        done = await ok(c, "memory_consolidate", {"ids": [a, b], "title": "ab", "summary": "both",
                                                  "namespace": "merged", "agent_id": "me"})
        new = await ok(c, "memory_get", {"id": done["id"]})
        assert new["tier"] == "long" and new["namespace"] == "merged" and new["metadata"]["agent_id"] == "me"
        assert new["metadata"]["consolidated_from_agents"][-1] == "other-agent"
        text, is_error = await call(c, "memory_consolidate", {"ids": [a, b], "title": "again"})
        assert is_error and text.startswith("summary is required")
        text, is_error = await call(c, "memory_consolidate", {"ids": [a, 3], "title": "t", "summary": "s"})
        assert is_error and text == "ids[1] must be a string"


def _summarizer() -> Starlette:
    async def chat(request: Request) -> JSONResponse:
        return JSONResponse({"choices": [{"message": {"role": "assistant", "content": "the gist"}}]})

    return Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])])


async def test_consolidate_summary_from_the_llm(node: Node) -> None:
    llm = LlmClient(LlmConfig(url="http://llm.test/v1", model="m"), transport=httpx.ASGITransport(_summarizer()))
    try:
        async with _client(node, llm=llm) as c:
            ids = [await store(c, "x"), await store(c, "y")]
            done = await ok(c, "memory_consolidate", {"ids": ids, "title": "xy"})
            assert done["auto_summary"] is True and done["summary_preview"] == "the gist"
            assert (await ok(c, "memory_get", {"id": done["id"]}))["content"] == "the gist"
    finally:
        await llm.aclose()


async def test_promote_to_an_ancestor_namespace(node: Node) -> None:
    async with _client(node) as c:
        source = await store(c, "deep fact", namespace="org/team/proj", tags=["t"], metadata={"k": "v"})
        start = await node.log.end_offsets()
        done = await ok(c, "memory_promote", {"id": source[:8], "to_namespace": "org"})
        assert done["mode"] == "vertical" and done["source_id"] == source and done["to_namespace"] == "org"
        clone = await ok(c, "memory_get", {"id": done["clone_id"]})
        original = await ok(c, "memory_get", {"id": source})
        assert clone["namespace"] == "org" and clone["title"] == "deep fact" and clone["tags"] == ["t"]
        assert clone["metadata"] == original["metadata"] and original["namespace"] == "org/team/proj"
        appended = await node.log.read(after=start)
        links = [r.event.envelope.payload["link"] for r in appended if r.event.envelope.type == "link.created"]
        assert [(x["source_id"], x["target_id"], x["relation"]) for x in links] == [
            (done["clone_id"], source, "derived_from")]
        vectors = node.model.queries.vectors([done["clone_id"]])
        indexed = node.vectors is None or done["clone_id"] in node.vectors.index
        assert (bool(vectors) and indexed) == node.semantic.ready
        # Promoting again merges into the clone (the original's upsert on title and namespace).
        again = await ok(c, "memory_promote", {"id": source, "to_namespace": "org"})
        assert again["clone_id"] == done["clone_id"]
        for target, fragment in (("org/team/proj", "proper ancestor"), ("other", "is not an ancestor"),
                                 ("org/team/proj/deeper", "is not an ancestor")):
            text, is_error = await call(c, "memory_promote", {"id": source, "to_namespace": target})
            assert is_error and fragment in text, text


async def test_promote_to_a_target_tier(node: Node) -> None:
    """The original's #831: ``target_tier`` mid stops there and keeps the expiry; short is a downgrade."""
    async with _client(node) as c:
        short = await store(c, "short fact", tier="short")
        expiry = (await ok(c, "memory_get", {"id": short}))["expires_at"]
        done = await ok(c, "memory_promote", {"id": short, "target_tier": "mid"})
        assert done == {"promoted": True, "mode": "tier", "id": short, "tier": "mid"}
        mid = await ok(c, "memory_get", {"id": short})
        assert mid["tier"] == "mid" and mid["expires_at"] == expiry
        assert (await ok(c, "memory_promote", {"id": short}))["tier"] == "long"
        long = await ok(c, "memory_get", {"id": short})
        assert long["tier"] == "long" and "expires_at" not in long
        for target, error in (("short", "target_tier 'short' is not a valid promote target (would be a downgrade)"),
                              ("huge", "target_tier must be one of 'mid' or 'long' (got 'huge')")):
            text, is_error = await call(c, "memory_promote", {"id": short, "target_tier": target})
            assert is_error and text == error


async def test_notify_inbox_unread_semantics(node: Node) -> None:
    async with _client(node, name="alice") as alice, _client(node, name="bob") as bob:
        sent = await ok(alice, "memory_notify", {"target_agent_id": "bob-agent", "title": "standup moved",
                                                 "payload": "to 10am", "priority": 42})
        box = await ok(bob, "memory_inbox", {"agent_id": "bob-agent", "unread_only": True})
        assert box["count"] == 1 and box["messages"][0]["id"] == sent["id"] and box["messages"][0]["priority"] == 10
        await ok(bob, "memory_recall", {"context": "standup moved", "namespace": "_messages/bob-agent"})
        assert (await ok(bob, "memory_inbox", {"agent_id": "bob-agent", "unread_only": True}))["count"] == 0
        # The same title again merges into the message, which stays read (the original's upsert).
        await ok(alice, "memory_notify", {"target_agent_id": "bob-agent", "title": "standup moved",
                                          "payload": "to 11am"})
        box = await ok(bob, "memory_inbox", {"agent_id": "bob-agent"})
        assert box["count"] == 1 and box["messages"][0]["payload"] == "to 11am" and box["messages"][0]["read"]
