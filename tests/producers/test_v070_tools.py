"""The original's v0.7.0 tools built here (capture_turn, share, offload/deref, the reflection tools) over MCP, and
the v0.7.0 HTTP routes that expose tools (the ``memory_<name>`` bridge, tools/list, find_paths, links/verify,
quota/status, share, capture_turn, and the LLM routes' 503) — all against a real node."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import mcp_types as types
import pytest
from mcp import Client
from nacl.signing import SigningKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from producers.errors import ValidationError
from producers.http import create_app
from producers.http import tools as bridge_module
from producers.llm.client import LlmClient, LlmConfig
from producers.mcp import McpApp
from producers.memory.wire import embedder_status
from producers.runtime.node import Node
from producers.tools import ToolContext
from producers.tools.client import ClientIdentity
from producers.tools.registry import Profile
from producers.tools.rules import add_rule, glob_matches
from producers.tools.turns import ALLOWLIST_ENV

# Every tool behaves the same on a SQLite and on a Postgres read model.
BOTH_READ_MODELS = True
ALICE = {"X-Agent-Id": "alice"}


@pytest.fixture
async def client(node: Node) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(node))
    # alice is this file's agent (each request names her, as a real agent does; a few name another).
    async with httpx.AsyncClient(transport=transport, base_url="http://test", headers=ALICE) as c:
        yield c


def _mcp(node: Node) -> Client:
    server = McpApp(node, Profile.parse("full")).build()
    return Client(server, client_info=types.Implementation(name="pytest-agent", version="1"))


async def _tool(mcp: Client, name: str, args: dict[str, Any]) -> tuple[Any, bool]:
    result = await mcp.call_tool(name, args)
    block = result.content[0]
    assert isinstance(block, types.TextContent)
    return (block.text if result.is_error else json.loads(block.text)), bool(result.is_error)


async def _store(client: httpx.AsyncClient, title: str, **extra: Any) -> str:
    r = await client.post("/api/v1/memories", json={"title": title, "content": f"about {title}", **extra},
                          headers=ALICE)
    assert r.status_code == 201, r.text
    memory_id: str = r.json()["id"]
    return memory_id


TURN = {"host_session_id": "s-1", "host_turn_index": 0, "role": "user", "content": "deploy on fridays? no."}


async def test_capture_turn_is_idempotent_over_http_and_mcp(client: httpx.AsyncClient, node: Node) -> None:
    first = await client.post("/api/v1/capture_turn", json=TURN, headers=ALICE)
    assert first.status_code == 201, first.text
    body = first.json()
    assert body == {"memory_id": body["memory_id"], "dedup_hit": False, "layer": "L4", "attest_level": "self_signed"}
    again = await client.post("/api/v1/capture_turn", json=TURN, headers=ALICE)
    assert again.status_code == 200 and again.json() == {"memory_id": body["memory_id"], "dedup_hit": True,
                                                          "layer": "L4"}
    stored = (await client.get(f"/api/v1/memories/{body['memory_id']}")).json()
    assert stored["title"] == "L4 capture unknown s-1 turn 0 (user)" and stored["metadata"]["agent_id"] == "alice"
    async with _mcp(node) as mcp:
        hit, _ = await _tool(mcp, "memory_capture_turn", TURN)
        assert hit["dedup_hit"] is True and hit["memory_id"] == body["memory_id"] and "elapsed_ms" in hit
        other, _ = await _tool(mcp, "memory_capture_turn", {**TURN, "host_turn_index": 1})
        assert other["dedup_hit"] is False and other["memory_id"] != body["memory_id"]
        text, is_error = await _tool(mcp, "memory_capture_turn", {"host_session_id": "x"})
        assert is_error and "host_turn_index is required" in text


async def test_capture_turn_host_signatures(client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch) -> None:
    key = SigningKey.generate()
    turn = {**TURN, "host_session_id": "signed"}
    canonical = f"signed\0{0}\0user\0{TURN['content']}".encode()
    pubkey = base64.b64encode(bytes(key.verify_key)).decode()
    signed = {**turn, "host_signature_b64": base64.b64encode(key.sign(canonical).signature).decode(),
              "host_pubkey_b64": pubkey}
    refused = await client.post("/api/v1/capture_turn", json=signed, headers=ALICE)
    assert refused.status_code == 400 and refused.json()["error"].startswith("HOST_PUBKEY_NOT_ENROLLED")
    monkeypatch.setenv(ALLOWLIST_ENV, pubkey)
    ok = await client.post("/api/v1/capture_turn", json=signed, headers=ALICE)
    assert ok.status_code == 201 and ok.json()["attest_level"] == "signed_by_peer"
    forged = await client.post("/api/v1/capture_turn", json={**signed, "host_session_id": "other"}, headers=ALICE)
    assert forged.status_code == 400 and "signature_verification_failed" in forged.json()["error"]
    missing = await client.post("/api/v1/capture_turn", json={"host_session_id": "s"}, headers=ALICE)
    assert missing.json() == {"error": "missing required field: host_turn_index", "fields": ["host_turn_index"]}
    half = await client.post("/api/v1/capture_turn", json={**turn, "host_pubkey_b64": "AA=="}, headers=ALICE)
    assert half.json()["error"].endswith("must both be present or both absent")


async def test_share_copies_with_provenance(client: httpx.AsyncClient) -> None:
    source = await _store(client, "runbook", tags=["ops"])
    r = await client.post("/api/v1/share", json={"source_memory_id": source, "target_agent_id": "bob"},
                          headers=ALICE)
    assert r.status_code == 200, r.text
    shared = r.json()
    assert shared["target_namespace"] == "_shared/alice\u2192bob" and shared["from_agent_id"] == "alice"
    # The copy is bob's (private, as its source): bob reads it.
    copy = (await client.get(f"/api/v1/memories/{shared['shared_memory_id']}", headers={"X-Agent-Id": "bob"})).json()
    assert copy["content"] == "about runbook" and copy["metadata"]["shared_from_memory_id"] == source
    assert copy["metadata"]["agent_id"] == "bob" and copy["tags"] == ["ops"]
    missing = await client.post("/api/v1/share", json={"source_memory_id": "nope", "target_agent_id": "bob"})
    assert missing.status_code == 400 and missing.json() == {"error": "source memory nope not found"}


async def test_offload_and_deref(node: Node) -> None:
    async with _mcp(node) as mcp:
        parked, _ = await _tool(mcp, "memory_offload", {"content": "a long tool output", "agent_id": "alice"})
        assert parked["ref_id"].startswith("ofl_") and parked["namespace"] == "auto"
        again, _ = await _tool(mcp, "memory_offload", {"content": "a long tool output", "agent_id": "alice"})
        assert again["ref_id"] == parked["ref_id"]  # content-addressed
        back, _ = await _tool(mcp, "memory_deref", {"ref_id": parked["ref_id"], "agent_id": "alice"})
        assert back["content"] == "a long tool output" and back["sha256"] == parked["content_sha256"]
        text, is_error = await _tool(mcp, "memory_deref", {"ref_id": parked["ref_id"], "agent_id": "mallory"})
        assert is_error and text == f"offloaded blob {parked['ref_id']} not found"


async def test_reflection_tools_over_the_http_bridge(client: httpx.AsyncClient) -> None:
    a, b = await _store(client, "obs a", namespace="team"), await _store(client, "obs b", namespace="team")
    r = await client.post("/api/v1/memory_reflect", json={"source_ids": [a, b], "title": "lesson",
                                                          "content": "a and b agree"}, headers=ALICE)
    assert r.status_code == 200, r.text
    first = r.json()
    assert first["reflection_depth"] == 1 and first["reflects_on"] == [a, b] and first["namespace"] == "team"
    deeper = (await client.post("/api/v1/memory_reflect", json={"source_ids": [first["id"]], "title": "meta",
                                                                "content": "c", "depth": 2})).json()
    assert deeper["reflection_depth"] == 2
    mismatch = await client.post("/api/v1/memory_reflect", json={"source_ids": [a], "title": "x", "content": "c",
                                                                 "depth": 5})
    assert mismatch.status_code == 400 and mismatch.json()["error"].startswith("CALLER_DEPTH_MISMATCH")
    level3 = (await client.post("/api/v1/memory_reflect", json={"source_ids": [deeper["id"]], "title": "m3",
                                                                "content": "c"})).json()
    too_deep = await client.post("/api/v1/memory_reflect", json={"source_ids": [level3["id"]], "title": "m4",
                                                                 "content": "c"})
    assert too_deep.json()["error"].startswith("REFLECTION_DEPTH_EXCEEDED: reflection depth 4 would exceed")

    origin = (await client.post("/api/v1/memory_reflection_origin", json={"memory_id": first["id"]})).json()
    assert origin == {"memory_id": first["id"], "peer_origin": None, "signing_agent": "alice", "original_depth": 1,
                      "local_depth_at_arrival": None, "is_reflection": True}
    dependents = (await client.post("/api/v1/memory_dependents_of_invalidated", json={"memory_id": a})).json()
    assert dependents == {"memory_id": a, "count": 1, "dependents": [{"id": first["id"], "namespace": "team"}]}
    md = (await client.post("/api/v1/memory_export_reflection", json={"memory_id": first["id"]})).json()
    assert md["suggested_filename"] == f"team/{first['id']}.md"
    assert md["content"].startswith("---\nmemory_id: ") and f"  - target_id: {a}\n" in md["content"]
    as_json = (await client.post("/api/v1/memory_export_reflection",
                                 json={"memory_id": first["id"], "format": "json"})).json()
    assert json.loads(as_json["content"])["reflects_on"] == [a, b]
    not_one = await client.post("/api/v1/memory_export_reflection", json={"memory_id": a})
    assert not_one.status_code == 400 and not_one.json() == {"error": f"memory is not a reflection: {a}"}
    nothing = await client.post("/api/v1/memory_reflection_origin", json={"memory_id": "missing"})
    assert nothing.status_code == 400 and nothing.json() == {"error": "memory not found: missing"}


async def test_tool_routes_and_their_errors(client: httpx.AsyncClient) -> None:
    a, b = await _store(client, "one"), await _store(client, "two")
    await client.post("/api/v1/links", json={"source_id": a, "target_id": b}, headers=ALICE)
    listed = (await client.get("/api/v1/tools/list")).json()
    assert [t["name"] for t in listed["tools"]][:2] == ["memory_store", "memory_recall"]
    family = (await client.post("/api/v1/memory_load_family", json={"family": "core"})).json()
    assert family["family"] == "core" and family["k"] == 20
    bad_family = await client.post("/api/v1/memory_load_family", json={"family": "Core"})
    assert bad_family.status_code == 400 and "uppercase" in bad_family.json()["error"]
    for path in ("/api/v1/kg/find_paths", "/api/v1/find_paths"):
        paths = (await client.post(path, json={"from_id": a, "to_id": b})).json()
        assert paths["paths"] == [[a, b]] and paths["count"] == 1
    deep = await client.post("/api/v1/find_paths", json={"source_id": a, "target_id": b, "max_depth": 8})
    assert deep.status_code == 422
    verified = (await client.post("/api/v1/links/verify", json={"source_id": a, "target_id": b})).json()
    assert verified["signature_verified"] is False
    neither = await client.post("/api/v1/links/verify", json={})
    assert neither.status_code == 400 and neither.json()["fields"] == ["source_id", "link_id"]
    quota = (await client.post("/api/v1/quota/status", json={"agent_id": "alice"}, headers=ALICE)).json()
    assert quota["agent_id"] == "alice" and quota["current_memories_today"] == 2
    spoof = await client.post("/api/v1/quota/status", json={"agent_id": "bob"}, headers=ALICE)
    assert spoof.status_code == 403
    for route, body in (("auto_tag", {"title": "t", "content": "c"}), ("expand_query", {"query": "q"})):
        r = await client.post(f"/api/v1/{route}", json=body)
        assert r.status_code == 503 and r.json() == {"error": "LLM not configured"}
    # No transcripts are recorded here, nor linked by the original's default install: both answer none.
    replay = await client.post("/api/v1/memory_replay", json={"memory_id": a})
    assert replay.status_code == 200 and replay.json() == {"memory_id": a, "transcripts": [], "count": 0}
    no_id = await client.post("/api/v1/memory_replay", json={"session_id": "s"})
    assert no_id.status_code == 400 and "memory_id" in no_id.json()["error"]
    not_object = await client.post("/api/v1/memory_smart_load", json=[1])
    assert not_object.status_code == 400


SKILL_MD = """---
namespace: team/skills
name: deploy-check
description: "Checks a deploy: health, then logs"
license: Apache-2.0
allowed-tools:
  - memory_recall
  - memory_store
metadata:
  owner: ops
---

# Deploy check

1. curl /health
"""


async def test_skills_register_supersede_read_export(client: httpx.AsyncClient, node: Node, tmp_path: Any,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "deploy-check"
    (folder / "resources" / "scripts").mkdir(parents=True)
    (folder / "SKILL.md").write_text(SKILL_MD)
    (folder / "resources" / "scripts" / "check.sh").write_text("curl -f localhost/health\n")
    (folder / "resources" / "logo.bin").write_bytes(b"\xff\x00\xfe")
    unauthorised = await client.post("/api/v1/skill/register", json={"folder_path": str(folder)})
    assert unauthorised.status_code == 403
    monkeypatch.setenv("AI_MEMORY_ADMIN_TOKEN", "op")
    op = {"X-AI-Memory-Admin-Token": "op", **ALICE}
    first = (await client.post("/api/v1/skill/register", json={"folder_path": str(folder)}, headers=op)).json()
    assert first["registered"] is True and first["name"] == "deploy-check" and "superseded_id" not in first
    inline = (await client.post("/api/v1/skill/register",
                                json={"inline_skill": SKILL_MD.replace("curl /health", "curl -f /health")})).json()
    assert inline["superseded_id"] == first["id"] and inline["digest"] != first["digest"]

    listed = (await client.get("/api/v1/skill/list?filter=deploy")).json()
    assert listed["count"] == 1 and listed["skills"][0]["id"] == inline["id"]
    old = (await client.get(f"/api/v1/skill/{first['id']}")).json()
    assert old["current"] is False and old["superseded_by"] == inline["id"] and old["license"] == "Apache-2.0"
    assert {r["path"] for r in old["resources"]} == {"scripts/check.sh", "logo.bin"}
    text = (await client.get(f"/api/v1/skill/{first['id']}/resource?path=scripts/check.sh")).json()
    assert text["content"] == "curl -f localhost/health\n" and text["encoding"] == "utf-8"
    binary = (await client.get(f"/api/v1/skill/{first['id']}/resource?path=logo.bin")).json()
    assert binary["encoding"] == "base64" and base64.b64decode(binary["content"]) == b"\xff\x00\xfe"
    nothing = await client.get("/api/v1/skill/not-a-skill")
    assert nothing.status_code == 404 and nothing.json() == {"error": "skill not found: not-a-skill"}

    out = tmp_path / "exported"
    exported = (await client.post(f"/api/v1/skill/{first['id']}/export", json={"target_folder": str(out)},
                                  headers=op)).json()
    assert exported["exported"] is True and (out / "resources" / "logo.bin").read_bytes() == b"\xff\x00\xfe"
    async with _mcp(node) as mcp:
        again, _ = await _tool(mcp, "memory_skill_register", {"folder_path": str(out)})
        assert again["digest"] == first["digest"]  # export then re-register gives the same digest
        text, is_error = await _tool(mcp, "memory_skill_register", {"inline_skill": "no fence"})
        assert is_error and text == "SKILL.md must begin with a '---' YAML frontmatter fence"
        text, is_error = await _tool(mcp, "memory_skill_register",
                                     {"inline_skill": "---\nnamespace: a\nname: Bad_Name\ndescription: d\n---\n"})
        assert is_error and "must be 1-64 lowercase letters" in text


async def test_skill_from_a_reflection_and_its_context(client: httpx.AsyncClient) -> None:
    a = await _store(client, "obs", namespace="lessons")
    refl = (await client.post("/api/v1/memory_reflect", json={"source_ids": [a], "title": "always check health",
                                                              "content": "health first"}, headers=ALICE)).json()
    promoted = (await client.post(f"/api/v1/skill/{refl['id']}/promote",
                                  json={"name": "health-first", "description": "check health first"})).json()
    assert promoted["promoted"] is True and promoted["derived_from_reflection_id"] == refl["id"]
    not_reflection = await client.post(f"/api/v1/skill/{a}/promote", json={"name": "x", "description": "d"})
    assert not_reflection.status_code == 400
    composed_md = SKILL_MD.replace("name: deploy-check", "name: composed").replace(
        "metadata:\n  owner: ops", "composes_with_reflections:\n  - namespace: lessons\n    min_depth: 1")
    composed = (await client.post("/api/v1/skill/register", json={"inline_skill": composed_md})).json()
    context = (await client.post(f"/api/v1/skill/{composed['id']}/compose", json={})).json()
    assert context["compositional_namespaces"] == [{"namespace": "lessons", "min_depth": 1,
                                                    "max_reflection_depth": 3}]
    assert [r["id"] for r in context["reflections"]] == [refl["id"]]
    tight = (await client.post(f"/api/v1/skill/{composed['id']}/compose", json={"budget_tokens": 1})).json()
    assert tight["reflections"] == [] and tight["memories_dropped"] == 1


async def test_agent_action_rules(client: httpx.AsyncClient, node: Node) -> None:
    async with _mcp(node) as mcp:
        ctx = ToolContext(node, Profile.parse("full"), ClientIdentity(None))
        await add_rule(ctx, {"id": "R001", "kind": "filesystem_write", "matcher": {"glob": "/tmp/**"},
                             "severity": "refuse", "reason": "no /tmp", "agent_id": "operator"})
        await add_rule(ctx, {"id": "W001", "kind": "bash", "matcher": {"command_substring": "rm -rf"},
                             "severity": "warn", "reason": "careful", "agent_id": "operator"})
        with pytest.raises(ValidationError, match="regex metacharacter"):
            await add_rule(ctx, {"id": "X", "kind": "bash", "matcher": {"command_substring": "rm.*"},
                                 "severity": "warn", "agent_id": "operator"})
        refused, _ = await _tool(mcp, "memory_check_agent_action", {"kind": "filesystem_write", "path": "/tmp/a/b"})
        assert refused["decision"] == {"decision": "refuse", "rule_id": "R001", "reason": "no /tmp"}
        elsewhere, _ = await _tool(mcp, "memory_check_agent_action", {"kind": "filesystem_write", "path": "/tmpx"})
        assert elsewhere["decision"] == {"decision": "allow"}
        text, is_error = await _tool(mcp, "memory_check_agent_action", {"kind": "bash"})
        assert is_error and text == "bash kind requires `command`"
    warned = (await client.post("/api/v1/memory_check_agent_action",
                                json={"kind": "bash", "command": "sudo rm -rf /", "agent_id": "a1"})).json()
    assert warned == {"decision": {"decision": "warn", "rule_id": "W001", "reason": "careful"}, "kind": "bash",
                      "agent_id": "a1"}
    # An anonymous caller is held to the same rules: the node reads them, not the caller.
    anonymous = client.build_request("POST", "/api/v1/memory_check_agent_action",
                                     json={"kind": "bash", "command": "rm -rf /"})
    del anonymous.headers["X-Agent-Id"]
    assert (await client.send(anonymous)).json()["decision"]["rule_id"] == "W001"
    listed = (await client.post("/api/v1/memory_rule_list", json={"kind": "bash"})).json()
    assert listed["count"] == 1 and listed["rules"][0]["matcher"] == '{"command_substring": "rm -rf"}'
    unknown = await client.post("/api/v1/memory_check_agent_action", json={"kind": "nope"})
    assert unknown.status_code == 400 and unknown.json() == {"error": "unknown kind `nope`"}


def test_glob() -> None:
    assert glob_matches("/tmp/**", "/tmp/a/b") and glob_matches("/tmp/*", "/tmp/a")
    assert not glob_matches("/tmp/*", "/tmp/a/b") and not glob_matches("/tmp/*", "/tmpa")


class _Chat:
    """An OpenAI-compatible endpoint served in-process: records every request, answers by what it is asked."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []

    def app(self) -> Starlette:
        async def chat(request: Request) -> JSONResponse:
            body = await request.json()
            self.requests.append(body)
            system = next((m["content"] for m in body["messages"] if m["role"] == "system"), "")
            prompt = body["messages"][-1]["content"]
            answer = ('Sure:\n```json\n{"atoms": [{"text": "We deploy on Tuesdays."}, {"text": "Fridays are '
                      'frozen."}]}\n```' if "atomic propositions" in system else "Alice reviews every deploy."
                      if prompt.startswith("Summarize") else "ops\ndeploy\n" if "tags" in prompt else "db\nsql\n")
            return JSONResponse({"choices": [{"message": {"role": "assistant", "content": answer}}]})

        return Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])])

    def client(self) -> LlmClient:
        return LlmClient(LlmConfig(url="http://llm.test/v1", model="m"), transport=httpx.ASGITransport(self.app()))


async def test_curator_tools_without_an_llm(client: httpx.AsyncClient, node: Node) -> None:
    a = await _store(client, "notes")
    tier = "semantic" if embedder_status(node)["embedder_ready"] else "keyword"
    locked = (await client.post("/api/v1/memory_atomise", json={"memory_id": a})).json()
    assert locked == {"tier-locked": "memory_atomise requires smart tier or higher", "current_tier": tier,
                      "required_tier": "smart"}
    bad = await client.post("/api/v1/memory_atomise", json={"memory_id": a, "max_atom_tokens": 10})
    assert bad.json() == {"error": "max_atom_tokens out of range [50, 1000]: 10"}
    async with _mcp(node) as mcp:
        ingest, _ = await _tool(mcp, "memory_ingest_multistep", {"content": "x"})
        assert ingest["tier-locked"] == "memory_ingest_multistep requires smart tier or higher"
        text, is_error = await _tool(mcp, "memory_persona_generate", {"entity_id": "alice"})
        assert is_error and text == f"memory_persona_generate requires smart tier or higher (current: {tier.title()})"
        none, _ = await _tool(mcp, "memory_persona", {"entity_id": "alice"})
        assert none == {"persona": None}


async def test_curator_tools_with_an_llm(node: Node) -> None:
    chat = _Chat()
    llm = chat.client()
    server = McpApp(node, Profile.parse("full"), llm=llm).build()
    try:
        async with Client(server, client_info=types.Implementation(name="t", version="1")) as mcp:
            src, _ = await _tool(mcp, "memory_store", {"title": "deploys", "content": "We deploy on Tuesdays and "
                                                       "Fridays are frozen.", "namespace": "ops", "agent_id": "al"})
            done, _ = await _tool(mcp, "memory_atomise", {"memory_id": src["id"], "agent_id": "al"})
            assert done["atom_count"] == 2 and done["source_id"] == src["id"]
            sent = chat.requests[-1]["messages"]
            assert sent[0]["role"] == "system" and "at most 200 tokens" in sent[0]["content"]
            assert sent[1]["content"] == "We deploy on Tuesdays and Fridays are frozen."
            atom, _ = await _tool(mcp, "memory_get", {"id": done["atom_ids"][1]})
            assert atom["content"] == "Fridays are frozen." and atom["metadata"]["atom_of"] == src["id"]
            archived, _ = await _tool(mcp, "memory_archive_list", {})
            assert [m["id"] for m in archived["archived"]] == [src["id"]]

            obs, _ = await _tool(mcp, "memory_store", {"title": "obs", "content": "alice approved", "agent_id": "al"})
            await _tool(mcp, "memory_reflect", {"source_ids": [obs["id"]], "title": "alice", "content": "careful",
                                                "metadata": {"entity_id": "alice"}, "agent_id": "al"})
            made, _ = await _tool(mcp, "memory_persona_generate", {"entity_id": "alice", "namespace": "global"})
            assert made["persona"]["version"] == 1 and made["namespace_scope"] == "single"
            assert made["persona"]["body_md"].startswith("Alice reviews every deploy.\n\n[^1]: alice")
            assert chat.requests[-1]["messages"][-1]["content"].startswith("Summarize the following memories")
            read, _ = await _tool(mcp, "memory_persona", {"entity_id": "alice"})
            assert read["persona"]["id"] == made["persona"]["id"]
            again, _ = await _tool(mcp, "memory_persona_generate", {"entity_id": "alice", "namespace": "global"})
            assert again["persona"]["version"] == 2
            text, is_error = await _tool(mcp, "memory_ingest_multistep", {"content": "x"})
            assert is_error and "staged pipeline is not available" in text
    finally:
        await llm.aclose()


async def test_llm_http_routes_with_an_llm(node: Node, monkeypatch: pytest.MonkeyPatch) -> None:
    chat = _Chat()
    monkeypatch.setenv("AI_MEMORY_LLM_URL", "http://llm.test/v1")
    monkeypatch.setattr(bridge_module, "LlmClient",
                        lambda config: LlmClient(config, transport=httpx.ASGITransport(chat.app())))
    transport = httpx.ASGITransport(app=create_app(node))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        tags = (await http.post("/api/v1/auto_tag", json={"title": "t", "content": "deploy notes"})).json()
        assert tags == {"tags": ["ops", "deploy"], "memory_id": None}
        assert "Title: t\nContent: deploy notes" in chat.requests[-1]["messages"][-1]["content"]
        terms = (await http.post("/api/v1/expand_query", json={"query": " db "})).json()
        assert terms == {"original": "db", "expanded_terms": ["db", "sql"]}
        empty = await http.post("/api/v1/expand_query", json={"query": ""})
        assert empty.status_code == 400 and empty.json() == {"error": "query is required"}


async def test_recall_observations_come_from_the_log(client: httpx.AsyncClient) -> None:
    a, b = await _store(client, "postgres tuning"), await _store(client, "postgres backups")
    recall = await client.get("/api/v1/recall", params={"context": "postgres", "mode": "keyword"})
    returned = [m["id"] for m in recall.json()["memories"]]
    assert set(returned) == {a, b}
    seen = (await client.post("/api/v1/memory_recall_observations", json={})).json()
    assert seen["count"] == 2 and [o["memory_id"] for o in seen["observations"]] == returned
    first = seen["observations"][0]
    assert first["rank"] == 1 and first["retriever"] == "recall" and first["score"] is None
    assert first["consumed"] is False and first["consumed_at"] is None
    one = (await client.post("/api/v1/memory_recall_observations",
                             json={"recall_id": first["recall_id"], "limit": 1})).json()
    assert one["count"] == 1
    assert (await client.post("/api/v1/memory_recall_observations", json={"consumed": True})).json()["count"] == 0
    later = (await client.post("/api/v1/memory_recall_observations", json={"since": "2999-01-01T00:00:00Z"})).json()
    assert later["count"] == 0
    bad = await client.post("/api/v1/memory_recall_observations", json={"since": "yesterday"})
    assert bad.status_code == 400 and bad.json() == {"error": "since is not valid RFC3339: 'yesterday'"}
