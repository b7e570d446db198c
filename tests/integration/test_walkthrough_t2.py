"""The README's ten-agent walkthrough (T2), step by step, against a real ``ai-memory serve`` process and the CLI
on its data directory: if a step's answer changes, the README is wrong."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from producers.identity.agent_client import AgentAuth, load_agent_key
from tests.servers import ServerProcess


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    s = ServerProcess(tmp_path / "node", env={"AI_MEMORY_EMBEDDER": "off"}).start()
    try:
        yield s
    finally:
        s.stop()


def cli(data_dir: Path, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "producers.cli.main", *args], capture_output=True, text=True,
                          timeout=60, env={**os.environ, "AI_MEMORY_HOME": str(data_dir)}, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def titles(body: dict[str, Any]) -> list[str]:
    return sorted(m["title"] for m in body["memories"])


def test_the_readme_walkthrough(server: ServerProcess) -> None:
    with httpx.Client(base_url=f"{server.url}/api/v1", timeout=10) as c:
        def as_(agent: str) -> dict[str, str]:
            return {"X-Agent-Id": agent}

        for agent in ("alice", "bob", "carol"):
            r = c.post("/agents", json={"agent_id": agent, "agent_type": "ai:claude-opus-4.7"})
            assert r.status_code in (200, 201) and r.json()["registered"]
        policy = {"write": "registered", "delete": "owner", "promote": "approve", "approver": {"consensus": 2}}
        assert c.post("/namespaces/acme/standard", headers=as_("alice"), json={"governance": policy}).json()["set"]

        deploy = c.post("/memories", headers=as_("bob"), json={
            "title": "Deploy order", "content": "db migrations before app rollout", "namespace": "acme/eng",
            "scope": "team"})
        assert deploy.status_code == 201
        memory_id = deploy.json()["id"]
        assert c.post("/memories", headers=as_("carol"), json={
            "title": "My notes", "content": "rollout checklist draft", "namespace": "acme/eng/carol",
            "scope": "private"}).status_code == 201
        dave = c.post("/memories", headers=as_("dave"), json={"title": "x", "content": "y", "namespace": "acme/eng"})
        assert dave.status_code == 403 and "not a registered agent" in dave.json()["error"]

        assert titles(c.get("/recall", params={"context": "rollout", "as_agent": "acme/eng/bob"},
                            headers=as_("bob")).json()) == ["Deploy order"]
        assert titles(c.get("/recall", params={"context": "rollout", "as_agent": "acme/eng/carol"},
                            headers=as_("carol")).json()) == ["Deploy order", "My notes"]

        pending = c.post(f"/memories/{memory_id}/promote", headers=as_("bob"))
        assert pending.status_code == 202 and pending.json()["status"] == "pending"
        pending_id = pending.json()["pending_id"]
        assert c.post(f"/pending/{pending_id}/approve", headers=as_("bob")).status_code == 403
        first = c.post(f"/pending/{pending_id}/approve", headers=as_("alice"))
        assert first.status_code == 202 and first.json()["votes"] == 1
        second = c.post(f"/pending/{pending_id}/approve", headers=as_("carol"))
        assert second.status_code == 200 and second.json()["executed"]
        assert c.get(f"/memories/{memory_id}").json()["tier"] == "long"
        refused = c.delete(f"/memories/{memory_id}", headers=as_("carol"))
        assert refused.status_code == 403 and refused.json() == {
            "error": "caller does not own this memory", "owner": "bob", "caller": "carol"}

        cli(server.data_dir, "visibility", "require", "acme/eng")
        assert c.get("/memories", params={"namespace": "acme/eng"}).status_code == 403
        tree = c.get("/taxonomy", params={"as_agent": "acme/eng/carol"}, headers=as_("carol")).json()
        assert tree["total_count"] == 2

        cli(server.data_dir, "identity", "keygen", "--agent", "bob")
        cli(server.data_dir, "identity", "register", "--agent", "bob")
        forged = c.post("/memories", headers=as_("bob"), json={"title": "Forged", "content": "x",
                                                                "namespace": "acme/eng"})
        assert forged.status_code == 401
        auth = AgentAuth("bob", load_agent_key(server.data_dir / "agent-keys" / "bob.priv"))
        signed = c.post("/memories", auth=auth, json={"title": "Signed note", "content": "canary first",
                                                      "namespace": "acme/eng", "scope": "team", "agent_id": "bob"})
        assert signed.status_code == 201
        got = c.get(f"/memories/{signed.json()['id']}", params={"as_agent": "acme/eng/bob"}, auth=auth).json()
        assert got["attest_level"] == "self_signed"
