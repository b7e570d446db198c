"""The original's v0.7.0 surface, walked against a live ``ai-memory serve``: every one of its 88 routes answers
(not an unknown-route 404 or a 405), every one of its 74 MCP tools is known to ``/mcp`` (no -32601), and every
one of its 79 CLI verbs has a ``--help`` here. The lists are data, taken from the original
(``tests/fixtures/v070_surface.json``), not from our own router."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import mcp_types as types
import pytest
from mcp import Client

from producers.cli.main import build_parser, main
from tests.servers import ServerProcess

SURFACE: dict[str, Any] = json.loads((Path(__file__).parents[1] / "fixtures" / "v070_surface.json").read_text())
CHILD_ENV = {"AI_MEMORY_EMBEDDER": "off", "AI_MEMORY_AGENT_ID": ""}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path_factory.mktemp("surface") / "node", extra=["--profile", "full"], env=CHILD_ENV)
    proc.data_dir.mkdir(parents=True)
    proc.start()
    yield proc
    proc.stop()


def test_the_surface_data_is_the_originals() -> None:
    assert len(SURFACE["routes"]) == 88 and len(SURFACE["tools"]) == 74 and len(SURFACE["cli_verbs"]) == 79


def test_every_route_answers(server: ServerProcess) -> None:
    with httpx.Client(base_url=server.url, timeout=30, headers={"X-Agent-Id": "walker"}) as http:
        memory_id = http.post("/api/v1/memories", json={"title": "walk", "content": "c"}).json()["id"]
        unanswered = []
        for method, path in SURFACE["routes"]:
            url = path.replace("{id}", memory_id).replace("{ns}", "walk").replace("{pending_id}", "none")
            if path == "/api/v1/approvals/stream":
                with http.stream(method, url) as r:  # server-sent events: the status line is the answer
                    status, body = r.status_code, b""
            else:
                r = http.request(method, url, json={} if method in ("POST", "PUT") else None)
                status, body = r.status_code, r.content
            # An unknown route is Starlette's plain "Not Found"; our 404s for missing things are JSON.
            if status == 405 or (status == 404 and not body.startswith(b"{")):
                unanswered.append(f"{method} {path} -> {status}")
        assert unanswered == []


async def test_every_tool_is_known_over_mcp(server: ServerProcess) -> None:
    async with Client(f"{server.url}/mcp", client_info=types.Implementation(name="walker", version="1")) as client:
        listed = {t.name for t in (await client.list_tools()).tools}
        assert set(SURFACE["tools"]) == listed
        for name in SURFACE["tools"]:
            # Empty arguments: a tool may refuse them (isError), but it must exist (-32601 would raise).
            result = await client.call_tool(name, {})
            assert result.content, name


@pytest.mark.parametrize("verb", SURFACE["cli_verbs"])
def test_every_cli_verb_answers_help(verb: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        build_parser().parse_args([verb, "--help"])
    assert done.value.code == 0
    assert f"usage: ai-memory {verb}" in capsys.readouterr().out


def test_cli_verbs_run(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AI_MEMORY_EMBEDDER", "off")
    base = ["--data-dir", str(tmp_path / "cli"), "--agent-id", "cli-user"]
    assert main(["offload", *base, "--arg", "content=parked text"]) == 0
    ref = json.loads(capsys.readouterr().out)["ref_id"]
    assert main(["deref", *base, json.dumps({"ref_id": ref})]) == 0
    assert json.loads(capsys.readouterr().out)["content"] == "parked text"
    assert main(["skill", "list", *base]) == 0
    assert json.loads(capsys.readouterr().out) == {"count": 0, "skills": []}
    assert main(["sync", *base]) == 0  # does not apply here: says why, exits cleanly
    assert "does not apply here" in capsys.readouterr().out
    assert main(["curator", "--once", *base]) == 0  # without an LLM: the original's report and its error
    assert "no LLM client configured" in capsys.readouterr().out
    assert main(["kg-query", *base, "--arg", "source_id=../x"]) == 2
