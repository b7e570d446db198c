"""MCP over the real transports, driven by the official MCP client: ``ai-memory mcp`` as a stdio subprocess, and
``/mcp`` (streamable HTTP) on a running ``ai-memory serve``. Also: one memory shared by both processes."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import mcp_types as types
import pytest
from mcp import Client, MCPError, StdioServerParameters

from tests.servers import ServerProcess

# The embedder is not what these tests are about; keep each child process quick to start.
CHILD_ENV = {"AI_MEMORY_EMBEDDER": "off", "AI_MEMORY_AGENT_ID": ""}


def stdio(data_dir: Path, *args: str) -> StdioServerParameters:
    env = {**os.environ, **CHILD_ENV}
    return StdioServerParameters(command=sys.executable,
                                 args=["-m", "producers.cli.main", "mcp", "--data-dir", str(data_dir), *args],
                                 env=env, cwd=str(Path(__file__).parents[2]))


def text_of(result: types.CallToolResult) -> str:
    block = result.content[0]
    assert isinstance(block, types.TextContent)
    return block.text


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path / "shared", extra=["--profile", "graph"], env=CHILD_ENV)
    proc.data_dir.mkdir(parents=True)
    proc.start()
    yield proc
    proc.stop()


async def test_stdio_with_the_official_client(tmp_path: Path) -> None:
    info = types.Implementation(name="claude-code", version="2.0")
    async with Client(stdio(tmp_path / "d", "--profile", "full"), mode="legacy", client_info=info) as client:
        assert client.protocol_version == "2025-11-25"
        assert len((await client.list_tools()).tools) == 74
        stored = json.loads(text_of(await client.call_tool("memory_store", {"title": "Deploy", "content":
                                                                            "blue green deploys on friday"})))
        assert stored["agent_id"].startswith("ai:claude-code@")
        recalled = text_of(await client.call_tool("memory_recall", {"context": "deploy friday"}))
        assert recalled.splitlines()[2].startswith(f"{stored['id']}|Deploy|mid|global|5|")
        conflict = await client.call_tool("memory_store", {"title": "Deploy", "content": "again"})
        assert conflict.is_error and text_of(conflict).startswith("CONFLICT: ")
    async with Client(stdio(tmp_path / "d")) as client:  # default profile core, 2026 protocol (no handshake)
        assert len((await client.list_tools()).tools) == 8
        with pytest.raises(MCPError) as error:
            await client.call_tool("memory_kg_query", {"source_id": stored["id"]})
        assert error.value.error.code == -32601 and "--profile core,graph" in error.value.error.message
        assert json.loads(text_of(await client.call_tool("memory_get", {"id": stored["id"]})))["title"] == "Deploy"


async def _rpc(proc: asyncio.subprocess.Process, message: dict[str, Any]) -> dict[str, Any]:
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write((json.dumps(message) + "\n").encode())
    await proc.stdin.drain()
    if "id" not in message:
        return {}
    line = await asyncio.wait_for(proc.stdout.readline(), 30)
    answer: dict[str, Any] = json.loads(line)
    return answer


async def test_stdio_speaks_2024_11_05_to_an_old_client(tmp_path: Path) -> None:
    """What the original's users have configured: a line-delimited JSON-RPC client asking for 2024-11-05."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "producers.cli.main", "mcp", "--data-dir", str(tmp_path / "d"),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        env={**os.environ, **CHILD_ENV})
    try:
        init = await _rpc(proc, {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2024-11-05", "capabilities": {},
            "clientInfo": {"name": "old-client", "version": "0.1"}}})
        assert init["result"]["protocolVersion"] == "2024-11-05"
        assert init["result"]["serverInfo"]["name"] == "ai-memory"
        assert set(init["result"]["capabilities"]) == {"tools", "prompts"}
        await _rpc(proc, {"jsonrpc": "2.0", "method": "notifications/initialized"})
        listed = await _rpc(proc, {"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
        assert listed["result"]["toolsVersion"] == "2026-05-06" and len(listed["result"]["tools"]) == 8
        call = {"name": "memory_store", "arguments": {"title": "t", "content": "c"}}
        stored = await _rpc(proc, {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": call})
        assert json.loads(stored["result"]["content"][0]["text"])["agent_id"].startswith("ai:old-client@")
        merged = await _rpc(proc, {"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": call})
        assert json.loads(merged["result"]["content"][0]["text"])["duplicate"] is True  # legacy clients merge
        failed = await _rpc(proc, {"jsonrpc": "2.0", "id": 5, "method": "tools/call",
                                   "params": {"name": "memory_get", "arguments": {"id": "nope"}}})
        assert failed["result"] == {"content": [{"type": "text", "text": "memory not found"}], "isError": True}
        unloaded = await _rpc(proc, {"jsonrpc": "2.0", "id": 6, "method": "tools/call",
                                     "params": {"name": "memory_gc", "arguments": {}}})
        assert unloaded["error"]["code"] == -32601
        assert (await _rpc(proc, {"jsonrpc": "2.0", "id": 7, "method": "ping"}))["result"] == {}
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        await asyncio.wait_for(proc.wait(), 30)
    assert proc.returncode == 0


async def test_stdio_answers_a_piped_batch_in_order(tmp_path: Path) -> None:
    """A script that writes every request and closes stdin gets every answer, in order, as from the original."""
    lines = [{"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2024-11-05", "capabilities": {}, "clientInfo": {"name": "script", "version": "1"}}},
             {"jsonrpc": "2.0", "method": "notifications/initialized"}]
    for i in range(5):
        lines.append({"jsonrpc": "2.0", "id": 10 + i, "method": "tools/call", "params": {
            "name": "memory_store", "arguments": {"title": f"fact {i}", "content": f"batch fact number {i}"}}})
    lines.append({"jsonrpc": "2.0", "id": 99, "method": "tools/call", "params": {
        "name": "memory_list", "arguments": {"format": "json"}}})
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "producers.cli.main", "mcp", "--data-dir", str(tmp_path / "d"),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        env={**os.environ, **CHILD_ENV})
    out, _ = await asyncio.wait_for(proc.communicate("".join(json.dumps(m) + "\n" for m in lines).encode()), 60)
    answers = {a["id"]: a for a in map(json.loads, out.decode().splitlines())}
    assert set(answers) == {1, 10, 11, 12, 13, 14, 99} and proc.returncode == 0
    listed = json.loads(answers[99]["result"]["content"][0]["text"])
    assert listed["count"] == 5


async def test_streamable_http_on_serve_shares_one_memory(server: ServerProcess) -> None:
    async with Client(f"{server.url}/mcp") as client:
        assert len((await client.list_tools()).tools) == 19  # --profile graph
        # Collective: shared with every reader, including these anonymous ones (MCP and HTTP without X-Agent-Id).
        stored = json.loads(text_of(await client.call_tool("memory_store", {"title": "Via MCP", "content": "x",
                                                                            "scope": "collective"})))
        taxonomy = json.loads(text_of(await client.call_tool("memory_get_taxonomy", {})))
        assert taxonomy["total_count"] == 1
    async with httpx.AsyncClient(base_url=server.url) as http:
        got = (await http.get(f"/api/v1/memories/{stored['id']}")).json()
        assert got["title"] == "Via MCP"
        created = (await http.post("/api/v1/memories", json={"title": "Via HTTP", "content": "y",
                                                             "scope": "collective"})).json()
        v3 = (await http.get("/api/v1/capabilities")).json()
        assert v3["schema_version"] == "3" and "families" not in v3
        assert sum(t["loaded"] for t in v3["tools"]) == 18 and v3["event_sourced"]["log"]["backend"] == "embedded"
        v1 = (await http.get("/api/v1/capabilities", headers={"Accept-Capabilities": "v1"})).json()
        assert set(v1) == {"tier", "version", "features", "models", "event_sourced"}
    async with Client(f"{server.url}/mcp", mode="legacy") as client:
        listed = json.loads(text_of(await client.call_tool("memory_list", {"format": "json"})))
        assert {m["id"] for m in listed["memories"]} == {stored["id"], created["id"]}


async def test_stdio_and_http_processes_share_a_data_dir(server: ServerProcess) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        created = (await http.post("/api/v1/memories", json={"title": "From HTTP", "content": "hello"})).json()
    async with Client(stdio(server.data_dir, "--profile", "full")) as client:
        got = json.loads(text_of(await client.call_tool("memory_get", {"id": created["id"]})))
        assert got["content"] == "hello"
        stored = json.loads(text_of(await client.call_tool("memory_store", {"title": "From MCP", "content": "hi",
                                                                            "scope": "collective"})))
    async with httpx.AsyncClient(base_url=server.url) as http:
        assert (await http.get(f"/api/v1/memories/{stored['id']}")).json()["title"] == "From MCP"


async def test_mcp_endpoint_honours_the_api_key(tmp_path: Path) -> None:
    proc = ServerProcess(tmp_path / "keyed", extra=["--api-key", "s3cret"], env=CHILD_ENV)
    proc.data_dir.mkdir(parents=True)
    proc.start()
    try:
        body = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "x", "version": "1"}}}
        headers = {"Accept": "application/json, text/event-stream"}
        async with httpx.AsyncClient(base_url=proc.url) as http:
            denied = await http.post("/mcp", json=body, headers=headers)
            assert denied.status_code == 401 and denied.json() == {"error": "missing or invalid API key"}
            allowed = await http.post("/mcp", json=body, headers={**headers, "X-API-Key": "s3cret"})
            assert allowed.status_code == 200 and "2025-06-18" in allowed.text
    finally:
        proc.stop()
