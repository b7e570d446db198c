"""A small team's memories, written through the HTTP API, for the memory browser's tests (ASGI and browser).

alice reads as ``acme/eng/alice``. She may see the team's memories in ``acme/eng`` and her own, never bob's
private one (``Seeded.secret``), nor the first version of the one bob moved to her (``Seeded.handover``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

__all__ = ["ALICE", "OLD_HANDOVER", "SECRET_CONTENT", "SECRET_TITLE", "Seeded", "seed"]

ALICE = "acme/eng/alice"
SECRET_TITLE = "Salary bands 2027"
SECRET_CONTENT = "bob's private numbers: do not share"
OLD_HANDOVER = "first draft: bob's eyes only"


@dataclass(frozen=True)
class Seeded:
    deploy: str
    rollback: str
    secret: str
    script: str
    handover: str
    pending: str
    secret_pending: str


def _ok(response: httpx.Response, *statuses: int) -> dict[str, Any]:
    assert response.status_code in (statuses or (200, 201)), response.text
    body: dict[str, Any] = response.json()
    return body


async def seed(c: httpx.AsyncClient) -> Seeded:
    """Store, link, update, move and propose through ``c`` (base URL ``…/api/v1``, API key set)."""
    def as_(agent: str) -> dict[str, str]:
        return {"X-Agent-Id": agent}

    async def store(agent: str, title: str, content: str, namespace: str, scope: str) -> str:
        body = _ok(await c.post("/memories", headers=as_(agent), json={
            "title": title, "content": content, "namespace": namespace, "scope": scope, "tags": ["ops"]}))
        return str(body["id"])

    for agent in ("alice", "bob", "carol"):
        _ok(await c.post("/agents", json={"agent_id": agent, "agent_type": "ai:claude-opus-4.7"}))
    policy = {"write": "registered", "promote": "approve", "approver": {"consensus": 2}}
    _ok(await c.post("/namespaces/acme/standard", headers=as_("alice"), json={"governance": policy}))
    # bob owns the deploy order: only a memory's owner links from it, edits it or asks to promote it.
    deploy = await store("bob", "Deploy order", "run migrations before the deploy", "acme/eng", "team")
    rollback = await store("alice", "Rollback plan", "keep the previous image for an hour", "acme/eng", "team")
    secret = await store("bob", SECRET_TITLE, SECRET_CONTENT, "acme/eng/bob", "private")
    script = await store("bob", "<script>alert('x')</script> deploy checklist", "a <b>bold</b> deploy claim",
                         "acme/eng", "team")
    handover = await store("bob", "Handover", OLD_HANDOVER, "acme/eng/bob", "private")
    for source, target, agent in ((deploy, rollback, "bob"), (deploy, secret, "bob")):
        _ok(await c.post("/links", headers=as_(agent), json={
            "source_id": source, "target_id": target, "relation": "related_to"}))
    _ok(await c.put(f"/memories/{deploy}", headers=as_("bob"), json={
        "content": "run migrations before the deploy, then roll out the app"}))
    _ok(await c.put(f"/memories/{handover}", headers=as_("bob"), json={
        "namespace": ALICE, "content": "alice owns the on-call handover now"}))
    pending = _ok(await c.post(f"/memories/{deploy}/promote", headers=as_("bob")), 202)
    _ok(await c.post(f"/pending/{pending['pending_id']}/approve", headers=as_("carol")), 202)
    secret_pending = _ok(await c.post(f"/memories/{secret}/promote", headers=as_("bob")), 202)
    return Seeded(deploy, rollback, secret, script, handover, str(pending["pending_id"]),
                  str(secret_pending["pending_id"]))
