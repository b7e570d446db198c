"""``ai-memory curator`` (the original's curator cycle): auto-tags and contradiction flags from an in-process
OpenAI-compatible endpoint, written as memory.updated events; the answers without an LLM; the options that do
not apply here."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from producers.cli.curator import cycles
from producers.cli.main import main
from producers.http import create_app
from producers.lifecycle.curator import CuratorConfig, run_once
from producers.llm.client import LlmClient, LlmConfig
from producers.runtime.node import Node

LONG = "the deploy runs the database migrations first and then the application servers, always"


class FakeLlm:
    """Tags every memory ``ops``/``deploy``; says two statements contradict when one of them says "never"."""

    def __init__(self) -> None:
        self.prompts: list[str] = []

    def client(self) -> LlmClient:
        async def chat(request: Request) -> JSONResponse:
            prompt = (await request.json())["messages"][-1]["content"]
            self.prompts.append(prompt)
            if prompt.startswith("Generate 3-5 short tags"):
                answer = "Ops\ndeploy\n"
            else:
                answer = "Yes, they do." if "never" in prompt else "no"
            return JSONResponse({"choices": [{"message": {"content": answer}}]})
        app = Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])])
        return LlmClient(LlmConfig(url="http://llm.test/v1", model="m"), transport=httpx.ASGITransport(app))


@pytest.fixture
async def http(node: Node) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(node))
    async with httpx.AsyncClient(transport=transport, base_url="http://test", headers={"X-Agent-Id": "al"}) as c:
        yield c


async def _store(http: httpx.AsyncClient, title: str, content: str, **extra: Any) -> str:
    r = await http.post("/api/v1/memories", json={"title": title, "content": content, "tier": "long",
                                                  "namespace": "ops", **extra})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def test_a_cycle_tags_and_flags_contradictions(node: Node, http: httpx.AsyncClient) -> None:
    a = await _store(http, "deploy order", LONG)
    b = await _store(http, "deploy order, later", "the deploy never runs the database migrations before the servers")
    short = await _store(http, "short", "too short to curate")
    await _store(http, "internal", LONG, namespace="_internal")
    fake = FakeLlm()
    llm = fake.client()
    before = await node.log.end_offsets()
    try:
        dry = await run_once(node, llm, CuratorConfig(dry_run=True), agent="curator")
        assert dry["auto_tagged"] == 2 and dry["contradictions_found"] == 2 and dry["dry_run"] is True
        assert await node.log.end_offsets() == before  # a dry run writes nothing
        report = await run_once(node, llm, CuratorConfig(), agent="curator")
    finally:
        await llm.aclose()
    assert report["memories_scanned"] == 4 and report["memories_eligible"] == 2
    assert report["auto_tagged"] == 2 and report["contradictions_found"] == 2 and report["errors"] == []
    assert report["operations_attempted"] == 2 and report["autonomy"]["clusters_formed"] == 0
    got = {i: (await http.get(f"/api/v1/memories/{i}")).json()["memory"] for i in (a, b, short)}
    assert got[a]["metadata"]["auto_tags"] == ["ops", "deploy"] and "curated_at" in got[a]["metadata"]
    assert got[a]["metadata"]["confirmed_contradictions"] == [b]
    assert got[b]["metadata"]["confirmed_contradictions"] == [a]
    assert got[a]["tags"] == [] and "auto_tags" not in got[short]["metadata"]
    envelopes = [r.event.envelope for r in await node.log.read(after={}, limit=100)]
    assert sum(e.type == "memory.updated" and e.actor == "curator" for e in envelopes) == 4
    # Curated memories are not eligible again; a tier with 4 x max_ops memories or more is said to be cut.
    again = await run_once(node, None, CuratorConfig(max_ops=1), agent="curator")
    assert again["memories_eligible"] == 0 and again["memories_scanned"] == 4
    assert again["errors"] == ["collect_candidates truncated at cap=4 per tier; consider raising max_ops_per_cycle "
                               "or paginating across cycles", "no LLM client configured"]


async def test_the_cap_and_the_namespace_lists(node: Node, http: httpx.AsyncClient) -> None:
    for i in range(3):
        await _store(http, f"m{i}", LONG)
    await _store(http, "elsewhere", LONG, namespace="dev")
    fake = FakeLlm()
    llm = fake.client()
    try:
        capped = await run_once(node, llm, CuratorConfig(max_ops=2, dry_run=True, include_namespaces=("ops",)),
                                agent="curator")
        assert capped["memories_eligible"] == 3 and capped["operations_attempted"] == 2
        assert capped["operations_skipped_cap"] == 1
        excluded = await run_once(node, llm, CuratorConfig(dry_run=True, exclude_namespaces=("ops",)),
                                  agent="curator")
        assert excluded["memories_eligible"] == 1
    finally:
        await llm.aclose()


async def test_daemon_cycles_print_reports(node: Node, capsys: pytest.CaptureFixture[str]) -> None:
    await cycles(node, None, CuratorConfig(), agent="curator", interval=0.01, as_json=True, count=2)
    out = capsys.readouterr().out
    assert out.count('"no LLM client configured"') == 2


def test_cli_without_an_llm(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AI_MEMORY_EMBEDDER", "off")
    monkeypatch.delenv("AI_MEMORY_LLM_URL", raising=False)
    base = ["--data-dir", str(tmp_path / "cli"), "--agent-id", "curator"]
    assert main(["curator", "--once", "--json", *base]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["errors"] == ["no LLM client configured"] and report["memories_scanned"] == 0
    assert main(["curator", "--once", *base]) == 0
    assert "curator cycle report" in capsys.readouterr().out
    assert main(["curator", *base]) == 2
    assert "requires --once, --daemon" in capsys.readouterr().err
    assert main(["curator", "--rollback", "abc", *base]) == 2
    assert "does not apply here" in capsys.readouterr().err
