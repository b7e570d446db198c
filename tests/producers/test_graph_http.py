"""Links, the knowledge graph and entities through the HTTP API (in-process ASGI, real node), on both read
models: the original's shapes and status codes, signed links, time travel (``as_of``) and visibility."""

from __future__ import annotations

from typing import Any

import httpx

from producers.graph.service import verify_stored
from producers.runtime.node import Node
from schemas import load_or_create_node_key
from tests.conftest import TEST_AGENT

BOTH_READ_MODELS = True
V1 = "/api/v1"


async def store(client: httpx.AsyncClient, title: str, agent: str = TEST_AGENT, **extra: Any) -> str:
    """A memory every agent may read (``collective`` unless given), stored by ``agent``: only its owner links
    from it (the original's rule over HTTP), and a caller cannot link to a memory it may not read."""
    body = {"title": title, "content": f"about {title}", "scope": "collective", **extra}
    r = await client.post(f"{V1}/memories", json=body, headers={"X-Agent-Id": agent})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def link(client: httpx.AsyncClient, src: str, dst: str, relation: str | None = None,
               agent: str = TEST_AGENT) -> httpx.Response:
    body = {"source_id": src, "target_id": dst} | ({"relation": relation} if relation else {})
    return await client.post(f"{V1}/links", json=body, headers={"X-Agent-Id": agent})


async def kg(client: httpx.AsyncClient, **body: Any) -> httpx.Response:
    return await client.post(f"{V1}/kg/query", json=body)


async def timeline(client: httpx.AsyncClient, agent: str = TEST_AGENT, **params: Any) -> httpx.Response:
    """``GET /kg/timeline`` as ``agent``: only a memory's owner reads its timeline over HTTP (the original's)."""
    return await client.get(f"{V1}/kg/timeline", params=params, headers={"X-Agent-Id": agent})


async def test_link_routes_shapes_and_errors(client: httpx.AsyncClient) -> None:
    a, b = await store(client, "a"), await store(client, "b")
    r = await link(client, a, b)
    assert r.status_code == 201
    assert {k: r.json()[k] for k in ("linked", "attest_level")} == {"linked": True, "attest_level": "unsigned"}
    assert (await link(client, a, b, "depends_on")).status_code == 201  # any relation name over HTTP
    links = (await client.get(f"{V1}/links/{b}")).json()["links"]
    assert [(lk["source_id"], lk["target_id"], lk["relation"]) for lk in links] == [
        (a, b, "related_to"), (a, b, "depends_on")]
    assert links[0]["observed_by"] == TEST_AGENT and links[0]["valid_from"] == links[0]["created_at"]
    assert "valid_until" not in links[0] and "signature" not in links[0]
    got = (await client.get(f"{V1}/memories/{a}")).json()
    assert [lk["target_id"] for lk in got["links"]] == [b, b]
    exported = (await client.get(f"{V1}/export")).json()
    assert len(exported["links"]) == 2
    # Errors: unknown memory, self link, over-long relation, not a JSON object.
    missing = await link(client, a, "no-such-id")
    assert missing.status_code == 404 and missing.json() == {"error": "target memory not found: no-such-id"}
    assert (await link(client, a, a)).json() == {"error": "cannot link a memory to itself"}
    too_long = await link(client, a, b, "r" * 65)
    assert too_long.status_code == 400 and "64 bytes" in too_long.json()["error"]
    assert (await client.post(f"{V1}/links", json=[1])).status_code == 400
    # DELETE with a relation removes that one; without, every relation between the two (the original's rule).
    r = await client.request("DELETE", f"{V1}/links", json={"source_id": a, "target_id": b, "relation": "depends_on"})
    assert r.status_code == 200 and r.json()["deleted"] is True
    r = await client.request("DELETE", f"{V1}/links", json={"source_id": a, "target_id": b})
    assert r.json()["deleted"] is True
    r = await client.request("DELETE", f"{V1}/links", json={"source_id": a, "target_id": b})
    assert r.json() == {"deleted": False}
    assert (await client.get(f"{V1}/links/{a}")).json() == {"links": []}


async def test_kg_query_timeline_invalidate(client: httpx.AsyncClient) -> None:
    a, b, c = await store(client, "a"), await store(client, "b", "bob", namespace="team/x"), await store(client, "c")
    await link(client, a, b)
    await link(client, b, c, "derived_from", agent="bob")
    body = (await kg(client, source_id=a, max_depth=2)).json()
    assert body["source_id"] == a and body["max_depth"] == 2 and body["count"] == 2
    assert body["paths"] == [f"{a}->{b}", f"{a}->{b}->{c}"]
    first = body["memories"][0]
    assert set(first) == {"target_id", "relation", "valid_from", "valid_until", "observed_by", "title",
                          "target_namespace", "depth", "path"}
    assert (first["title"], first["target_namespace"], first["depth"]) == ("b", "team/x", 1)
    assert (await kg(client, source_id=a)).json()["count"] == 1  # max_depth defaults to 1
    assert (await kg(client, source_id=a, max_depth=3, allowed_agents=[])).json()["count"] == 0
    assert (await kg(client, source_id=a, max_depth=3, allowed_agents=["bob"])).json()["count"] == 0
    assert (await kg(client, source_id=b, allowed_agents=["bob"])).json()["paths"] == [f"{b}->{c}"]
    assert (await kg(client, source_id=a, max_depth=2, limit=1)).json()["count"] == 1
    deep = await kg(client, source_id=a, max_depth=6)
    assert deep.status_code == 422 and deep.json() == {"error": "max_depth=6 exceeds supported depth=5"}
    assert (await kg(client, source_id=a, valid_at="yesterday")).status_code == 400

    events = (await timeline(client, "bob", source_id=b)).json()
    assert events["count"] == 1 and events["events"][0]["target_id"] == c
    assert set(events["events"][0]) == {"target_id", "relation", "valid_from", "valid_until", "observed_by",
                                        "title", "target_namespace"}
    later = await timeline(client, "bob", source_id=b, since="2999-01-01T00:00:00Z")
    assert later.json()["count"] == 0

    stamp = "2000-01-01T00:00:00+00:00"
    r = await client.post(f"{V1}/kg/invalidate", json={"source_id": a, "target_id": b, "relation": "related_to",
                                                       "valid_until": stamp})
    assert r.json()["found"] is True and r.json()["valid_until"] == stamp
    assert r.json()["previous_valid_until"] is None
    again = await client.post(f"{V1}/kg/invalidate", json={"source_id": a, "target_id": b,
                                                           "relation": "related_to"})
    assert again.json()["previous_valid_until"] == stamp
    none = await client.post(f"{V1}/kg/invalidate", json={"source_id": a, "target_id": c, "relation": "supersedes"})
    assert none.json() == {"found": False, "source_id": a, "target_id": c, "relation": "supersedes"}
    # valid now? the link stopped being valid; it is still there for history
    now = "2100-01-01T00:00:00+00:00"
    assert (await kg(client, source_id=a, valid_at=now)).json()["count"] == 0
    assert (await kg(client, source_id=a)).json()["count"] == 1


async def test_a_timeline_is_read_by_its_sources_owner(client: httpx.AsyncClient) -> None:
    """The original v0.7.0's rule (#944): another named caller, or an anonymous one, gets 403 with the owner
    named; a source that does not exist gets the same 404 whoever asks."""
    a, b = await store(client, "a"), await store(client, "b")
    assert (await link(client, a, b)).status_code == 201
    assert (await timeline(client, source_id=a)).json()["count"] == 1
    other = await timeline(client, "mallory", source_id=a)
    assert other.status_code == 403 and other.json() == {"error": "caller does not own this source memory",
                                                        "owner": TEST_AGENT, "caller": "mallory", "source_id": a}
    anonymous = await timeline(client, "", source_id=a)  # no X-Agent-Id: a fresh agent, owning nothing
    assert anonymous.status_code == 403 and anonymous.json()["caller"].startswith("anonymous:")
    nobody = "0" * 8 + "-0000-4000-8000-" + "0" * 12
    for agent in (TEST_AGENT, "mallory"):
        absent = await timeline(client, agent, source_id=nobody)
        assert absent.status_code == 404
        assert absent.json() == {"found": False, "source_id": nobody, "error": "source memory not found"}


async def test_time_travel_and_deletion(client: httpx.AsyncClient) -> None:
    a, b, c = await store(client, "a"), await store(client, "b"), await store(client, "c")
    await link(client, a, b)
    linked = (await link(client, b, c)).json()["offset"]
    await client.put(f"{V1}/memories/{c}", json={"title": "c renamed"})
    deleted = (await client.delete(f"{V1}/memories/{b}")).json()["offset"]
    assert (await kg(client, source_id=a, max_depth=3)).json()["count"] == 0
    then = (await kg(client, source_id=a, max_depth=3, as_of=linked)).json()
    assert then["paths"] == [f"{a}->{b}", f"{a}->{b}->{c}"] and then["memories"][1]["title"] == "c"
    assert (await kg(client, source_id=a, max_depth=3, as_of=deleted - 1)).json()["memories"][1]["title"] == (
        "c renamed")
    assert (await client.get(f"{V1}/links/{b}", params={"as_of": linked})).json()["links"] != []
    assert (await client.get(f"{V1}/links/{b}")).json() == {"links": []}
    assert (await client.get(f"{V1}/links/{b}", params={"as_of": "-1"})).status_code == 400
    assert (await timeline(client, source_id=b, as_of=linked)).json()["count"] == 1


async def test_visibility_with_as_agent(client: httpx.AsyncClient) -> None:
    a = await store(client, "a", namespace="org/team/alice", scope="team")
    secret = await store(client, "secret", namespace="org/team/bob", scope="private")
    shared = await store(client, "shared", namespace="org/team/bob", scope="team")
    for target in (secret, shared):  # by their author: the only agent that may read the private one
        assert (await link(client, a, target, agent=TEST_AGENT)).status_code == 201
    as_carol = (await kg(client, source_id=a, as_agent="org/team/carol")).json()
    assert [m["target_id"] for m in as_carol["memories"]] == [shared]
    assert len((await kg(client, source_id=a)).json()["memories"]) == 2
    assert (await kg(client, source_id=a, as_agent="elsewhere/x")).json()["count"] == 0
    seen = (await client.get(f"{V1}/links/{a}", params={"as_agent": "org/team/carol"})).json()["links"]
    assert [lk["target_id"] for lk in seen] == [shared]


async def test_signed_links_verify(client: httpx.AsyncClient, node: Node) -> None:
    load_or_create_node_key(node.config.data_dir / "keys", "alice")  # alice has a key on this node
    a, b = await store(client, "a", "alice"), await store(client, "b", "bob")
    assert (await link(client, a, b, agent="alice")).json()["attest_level"] == "self_signed"
    assert (await link(client, b, a, agent="bob")).json()["attest_level"] == "unsigned"
    result = await node.graph.verify(a, b, "related_to")
    stored = await node.graph.get_links(a)
    assert result == {"signature_verified": True, "attest_level": "self_signed", "signed_by": "alice",
                      "signed_at": stored[0].valid_from}
    # Any key source works; a different key does not verify, and a missing one leaves the level as stored.
    other = load_or_create_node_key(node.config.data_dir / "other", "alice")
    assert verify_stored(stored[0], lambda _agent: other.public_bytes)["signature_verified"] is False
    assert verify_stored(stored[0], lambda _agent: None) == {"signature_verified": False,
                                                             "attest_level": "self_signed", "signed_by": None,
                                                             "signed_at": None}
    unsigned = await node.graph.verify(b, a, "related_to")
    assert unsigned == {"signature_verified": False, "attest_level": "unsigned", "signed_by": None,
                        "signed_at": None}
    # Invalidating changes the signed fields: as in the original, the signature is dropped.
    await client.post(f"{V1}/kg/invalidate", json={"source_id": a, "target_id": b, "relation": "related_to"},
                      headers={"X-Agent-Id": "alice"})
    assert (await node.graph.verify(a, b, "related_to"))["attest_level"] == "unsigned"


async def test_entities_and_lineage(client: httpx.AsyncClient) -> None:
    r = await client.post(f"{V1}/entities", json={"canonical_name": "PostgreSQL", "namespace": "infra",
                                                  "aliases": ["pg", " postgres ", ""]})
    assert r.status_code == 201
    first = r.json()
    assert (first["created"], first["aliases"], first["canonical_name"]) == (True, ["pg", "postgres"], "PostgreSQL")
    again = await client.post(f"{V1}/entities", json={"canonical_name": "PostgreSQL", "namespace": "infra",
                                                      "aliases": ["psql", "pg"]})
    assert again.status_code == 200 and again.json()["entity_id"] == first["entity_id"]
    assert again.json()["aliases"] == ["pg", "postgres", "psql"] and again.json()["created"] is False
    for path in ("by_alias", "by-alias"):
        found = (await client.get(f"{V1}/entities/{path}", params={"alias": "psql"})).json()
        assert found == {"found": True, "entity_id": first["entity_id"], "canonical_name": "PostgreSQL",
                         "namespace": "infra", "aliases": ["pg", "postgres", "psql"]}
    nothing = (await client.get(f"{V1}/entities/by_alias", params={"alias": "pg", "namespace": "other"})).json()
    assert nothing == {"found": False, "entity_id": None, "canonical_name": None, "namespace": None, "aliases": []}
    assert (await client.get(f"{V1}/entities/by_alias")).status_code == 400
    entity = (await client.get(f"{V1}/memories/{first['entity_id']}")).json()
    assert entity["tags"] == ["entity"] and entity["metadata"]["kind"] == "entity" and entity["tier"] == "long"
    await store(client, "plain", namespace="infra")
    clash = await client.post(f"{V1}/entities", json={"canonical_name": "plain", "namespace": "infra"})
    assert clash.status_code == 409 and "non-entity" in clash.json()["error"]

    src, mid, root = await store(client, "summary"), await store(client, "draft"), await store(client, "notes")
    await link(client, src, mid, "derived_from")
    await link(client, mid, root, "supersedes")
    await link(client, src, root, "related_to")  # not provenance
    lineage = (await client.get(f"{V1}/memories/{src}/lineage")).json()
    assert lineage["id"] == src and lineage["count"] == 2
    assert [n["path"] for n in lineage["lineage"]] == [f"{src}->{mid}", f"{src}->{mid}->{root}"]
    assert (await client.get(f"{V1}/memories/no-such/lineage")).status_code == 404
