"""Anonymous HTTP reads (no ``X-Agent-Id``) under ``AI_MEMORY_ANONYMOUS_READS``: by default (``private-hidden``)
as the original v0.7.0's #910 (``visibility::is_visible_to_caller`` with a fresh ``anonymous:req-…`` caller): a
memory whose scope is ``private`` *or unset* is left out of every read, explicit non-private scopes stay visible
on list and get, search and recall leave only ``collective`` (the original's SQLite paths take the caller's id as
``as_agent``), and an identified caller still sees its own. ``all`` (the opt-out) reads unfiltered by author."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from producers.http import create_app
from producers.runtime.node import Node

ALICE = {"X-Agent-Id": "alice"}


async def _seed(http: httpx.AsyncClient) -> dict[str, str]:
    ids = {}
    for name, scope in (("unset", None), ("private", "private"), ("team", "team"), ("collective", "collective")):
        metadata = {"scope": scope} if scope else {}
        r = await http.post("/api/v1/memories", headers=ALICE, json={
            "title": f"{name} ledger", "content": "quarterly ledger", "namespace": "corp", "metadata": metadata})
        assert r.status_code == 201, r.text
        ids[name] = r.json()["id"]
    # A public memory linking to the scope-less one: the graph must not cross to it either.
    assert (await http.post("/api/v1/links", headers=ALICE, json={
        "source_id": ids["collective"], "target_id": ids["unset"]})).status_code == 201
    return ids


@pytest.fixture(params=["default", "private-hidden"])
async def hidden_http(node: Node, monkeypatch: pytest.MonkeyPatch,
                      request: pytest.FixtureRequest) -> AsyncIterator[httpx.AsyncClient]:
    if request.param == "default":
        monkeypatch.delenv("AI_MEMORY_ANONYMOUS_READS", raising=False)
    else:
        monkeypatch.setenv("AI_MEMORY_ANONYMOUS_READS", request.param)
    transport = httpx.ASGITransport(app=create_app(node))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


async def _titles(http: httpx.AsyncClient, headers: dict[str, str] | None = None) -> dict[str, set[str]]:
    listed = (await http.get("/api/v1/memories", params={"namespace": "corp"}, headers=headers)).json()
    found = (await http.get("/api/v1/search", params={"q": "ledger"}, headers=headers)).json()
    recalled = (await http.get("/api/v1/recall", params={"context": "ledger", "mode": "keyword"},
                               headers=headers)).json()
    return {"list": {m["title"] for m in listed["memories"]}, "search": {m["title"] for m in found["results"]},
            "recall": {m["title"] for m in recalled["memories"]}}


async def test_private_hidden_matches_the_original(hidden_http: httpx.AsyncClient) -> None:
    ids = await _seed(hidden_http)
    public = {"team ledger", "collective ledger"}
    assert await _titles(hidden_http) == {"list": public, "search": {"collective ledger"},
                                          "recall": {"collective ledger"}}
    for name in ("unset", "private"):
        assert (await hidden_http.get(f"/api/v1/memories/{ids[name]}")).status_code == 404
    assert (await hidden_http.get(f"/api/v1/memories/{ids['team']}")).status_code == 200
    walk = (await hidden_http.post("/api/v1/kg/query", json={"source_id": ids["collective"]})).json()
    assert walk["count"] == 0
    # The author still reads all of its own.
    everything = {"unset ledger", "private ledger", *public}
    assert (await _titles(hidden_http, ALICE))["list"] == everything
    walk = (await hidden_http.post("/api/v1/kg/query", json={"source_id": ids["collective"]}, headers=ALICE)).json()
    assert [m["target_id"] for m in walk["memories"]] == [ids["unset"]]


async def test_all_keeps_anonymous_reads_unfiltered(node: Node, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AI_MEMORY_ANONYMOUS_READS", "all")
    transport = httpx.ASGITransport(app=create_app(node))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        await _seed(http)
        everything = {"unset ledger", "private ledger", "team ledger", "collective ledger"}
        assert await _titles(http) == {"list": everything, "search": everything, "recall": everything}
        assert (await _titles(http, {"X-Agent-Id": "bob"}))["list"] == {"team ledger", "collective ledger"}


def test_an_unknown_setting_is_refused(node: Node, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AI_MEMORY_ANONYMOUS_READS", "none")
    with pytest.raises(ValueError, match="must be 'all' or 'private-hidden'"):
        create_app(node)


async def test_anonymous_recall_down_a_tree_and_with_as_agent(hidden_http: httpx.AsyncClient) -> None:
    """A recall anchored below ``corp`` also reads ``corp``: still only ``collective`` for an anonymous caller.
    A request's own ``as_agent`` takes the anonymous id's place, as in the original (``as_agent.or(caller)``):
    the scope rule then reaches corp's team memory, and the owner rule still hides the private ones."""
    await _seed(hidden_http)

    async def recalled(**params: str) -> set[str]:
        answer = await hidden_http.get("/api/v1/recall", params={"context": "ledger", "mode": "keyword", **params})
        assert answer.status_code == 200, answer.text
        return {m["title"] for m in answer.json()["memories"]}

    assert await recalled(namespace="corp/eng") == {"collective ledger"}
    assert await recalled(as_agent="corp/eng") == {"team ledger", "collective ledger"}
    found = (await hidden_http.get("/api/v1/search", params={"q": "ledger", "as_agent": "corp/eng"})).json()
    assert {m["title"] for m in found["results"]} == {"team ledger", "collective ledger"}
