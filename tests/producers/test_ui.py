"""The memory browser (/ui) over the ASGI app: the API key (header, query, login cookie), escaping, and the
reader's view (as_agent) on every page. tests/integration/test_ui_browser.py drives the same pages in Chromium."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from nacl.signing import SigningKey

from producers.http import create_app, ui
from producers.http.ui import COOKIE
from producers.identity.agent_client import AgentAuth
from producers.runtime.node import Node
from schemas.request_signing import key_id_for, sign_registration
from tests.ui_seed import ALICE, OLD_HANDOVER, SECRET_CONTENT, SECRET_TITLE, Seeded, seed

BOTH_READ_MODELS = True
KEY = "k-123"
HTML = {"accept": "text/html"}


@pytest.fixture
async def app_client(node: Node) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(node, api_key=KEY))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


@pytest.fixture
async def seeded(app_client: httpx.AsyncClient) -> Seeded:
    api = httpx.AsyncClient(transport=app_client._transport, base_url="http://test/api/v1",
                            headers={"x-api-key": KEY})
    async with api:
        return await seed(api)


async def page(c: httpx.AsyncClient, path: str, **params: str) -> httpx.Response:
    return await c.get(path, params=params, headers={**HTML, "x-api-key": KEY})


async def test_without_the_key_a_browser_gets_the_login_form_and_a_tool_gets_json(
        app_client: httpx.AsyncClient) -> None:
    browser = await app_client.get("/ui/search", params={"q": "x"}, headers=HTML)
    assert browser.status_code == 401 and 'name="api_key"' in browser.text
    assert 'value="/ui/search?q=x"' in browser.text  # back to the page asked for after logging in
    tool = await app_client.get("/ui")
    assert tool.status_code == 401 and tool.json() == {"error": "missing or invalid API key"}
    wrong = await app_client.get("/ui", headers={**HTML, "x-api-key": "nope"})
    assert wrong.status_code == 401 and "<form" in wrong.text


async def test_login_sets_an_httponly_cookie_for_ui_only(app_client: httpx.AsyncClient) -> None:
    refused = await app_client.post("/ui/login", data={"api_key": "nope", "next": "/ui"}, headers=HTML)
    assert refused.status_code == 401 and "not this node" in refused.text and COOKIE not in refused.headers.get(
        "set-cookie", "")
    ok = await app_client.post("/ui/login", data={"api_key": KEY, "next": "/ui/namespaces"})
    assert ok.status_code == 303 and ok.headers["location"] == "/ui/namespaces"
    cookie = ok.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=") and "HttpOnly" in cookie and "Path=/ui" in cookie
    assert "SameSite=strict" in cookie
    assert (await app_client.get("/ui/namespaces", headers=HTML)).status_code == 200  # the client kept the cookie
    # The cookie opens /ui, never the API: the API takes its key as before.
    assert (await app_client.get("/api/v1/memories")).status_code == 401
    elsewhere = await app_client.post("/ui/login", data={"api_key": KEY, "next": "//evil.example/ui"})
    assert elsewhere.headers["location"] == "/ui"
    await app_client.get("/ui/logout")
    assert (await app_client.get("/ui", headers=HTML)).status_code == 401


async def test_a_key_in_the_query_is_remembered_in_the_cookie(app_client: httpx.AsyncClient) -> None:
    first = await app_client.get("/ui", params={"api_key": KEY}, headers=HTML)
    assert first.status_code == 200 and COOKIE in first.headers["set-cookie"]
    assert (await app_client.get("/ui/pending", headers=HTML)).status_code == 200


async def test_pages_forbid_scripts_and_escape_what_memories_say(app_client: httpx.AsyncClient,
                                                                 seeded: Seeded) -> None:
    for path, params in (("/ui", {}), ("/ui/search", {"q": "deploy", "kind": "search"}),
                         ("/ui/search", {"q": "deploy claim"}), ("/ui/memories", {"namespace": "acme/eng"}),
                         (f"/ui/memories/{seeded.script}", {})):
        r = await page(app_client, path, **params)
        assert r.status_code == 200, (path, r.text)
        assert "<script>" not in r.text and "<b>bold" not in r.text, path
        assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in r.text, path
        assert "script-src" not in r.headers["content-security-policy"]  # default-src 'none': no script at all
        assert r.headers["content-security-policy"].startswith("default-src 'none'")


async def test_recall_shows_scores_and_search_shows_rank(app_client: httpx.AsyncClient, seeded: Seeded) -> None:
    recall = await page(app_client, "/ui/search", q="migrations deploy", kind="recall")
    assert "found by recall" in recall.text and 'class="score"' in recall.text
    assert f'href="/ui/memories/{seeded.deploy}"' in recall.text
    search = await page(app_client, "/ui/search", q="migrations", kind="search")
    assert "keyword search" in search.text and 'class="score"' not in search.text
    bad = await page(app_client, "/ui/search", q="x", kind="guess")
    assert bad.status_code == 400 and "kind must be one of search, recall" in bad.text


async def test_memory_page_shows_links_versions_events_and_signers(app_client: httpx.AsyncClient, node: Node,
                                                                  seeded: Seeded) -> None:
    r = await page(app_client, f"/ui/memories/{seeded.deploy}")
    text = r.text
    assert r.status_code == 200 and "run migrations before the deploy, then roll out the app" in text
    assert f'href="/ui/memories/{seeded.rollback}">Rollback plan</a>' in text  # the link, by title
    for event in ("memory.stored", "memory.updated", "link.created", "memory.embedded",
                  "governance.pending_requested", "governance.pending_voted"):  # bob's promotion, carol's vote
        assert event in text, event
    assert text.count(node.key.key_id) >= 3 and "verified" in text  # each event: the node's key, checked
    versions = text.split("<h2>Versions</h2>")[1].split("<h2>")[0]
    assert "<b>content</b>: run migrations before the deploy<br>" in versions  # version 1
    assert "then roll out the app" in versions  # version 2's
    assert "unsigned" in text  # nobody signed: the attestation level says so


async def test_a_reader_sees_nothing_it_may_not(app_client: httpx.AsyncClient, seeded: Seeded) -> None:
    everyone = await page(app_client, f"/ui/memories/{seeded.deploy}")
    assert seeded.secret in everyone.text  # without as_agent nothing is filtered (as the API)
    as_alice = {"as_agent": ALICE}
    pages = [await page(app_client, "/ui", **as_alice),
             await page(app_client, "/ui/search", q="salary bands private numbers", **as_alice),
             await page(app_client, "/ui/search", q="salary", kind="search", **as_alice),
             await page(app_client, "/ui/namespaces", **as_alice),
             await page(app_client, "/ui/memories", namespace="acme/eng", **as_alice),
             await page(app_client, f"/ui/memories/{seeded.deploy}", **as_alice),
             await page(app_client, f"/ui/memories/{seeded.handover}", **as_alice),
             await page(app_client, "/ui/pending", **as_alice)]
    for r in pages:
        assert r.status_code == 200, r.text
        for leak in (SECRET_TITLE, SECRET_CONTENT, seeded.secret, seeded.secret_pending, "acme/eng/bob"):
            assert leak not in r.text, (leak, r.url)
        assert f"as_agent={ALICE.replace('/', '%2F')}" in r.text  # the reader rides in every link
    handover = pages[6].text
    assert "alice owns the on-call handover now" in handover and OLD_HANDOVER not in handover
    assert "not visible to this reader" in handover  # version 1 lay in bob's private namespace
    assert seeded.pending in pages[7].text and "carol" in pages[7].text  # the team's promotion and its vote
    assert "1 of 2 votes of registered agents" in pages[7].text  # the policy on acme: consensus of 2
    hidden = await page(app_client, f"/ui/memories/{seeded.secret}", **as_alice)
    assert hidden.status_code == 404 and SECRET_TITLE not in hidden.text
    bad = await page(app_client, "/ui", as_agent="a//b")
    assert bad.status_code == 400 and "as_agent" in bad.text


async def test_mandatory_as_agent_is_the_apis(app_client: httpx.AsyncClient, node: Node, seeded: Seeded) -> None:
    await node.identity.set_as_agent_required("acme/eng", True, actor="operator")
    refused = await page(app_client, "/ui/memories", namespace="acme/eng")
    assert refused.status_code == 403 and "as_agent is required to read namespace" in refused.text
    assert (await page(app_client, f"/ui/memories/{seeded.deploy}")).status_code == 403
    listed = await page(app_client, "/ui/memories", namespace="acme/eng", as_agent=ALICE)
    assert listed.status_code == 200 and "Deploy order" in listed.text
    pending = await page(app_client, "/ui/pending")
    assert seeded.pending not in pending.text  # its namespace now needs as_agent


async def test_a_node_without_a_key_asks_for_none(node: Node) -> None:
    transport = httpx.ASGITransport(app=create_app(node, api_key=None))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        assert (await c.get("/ui", headers=HTML)).status_code == 200
        login = await c.get("/ui/login")
        assert login.status_code == 303 and login.headers["location"] == "/ui"


async def test_a_login_form_too_large_is_refused_plainly(app_client: httpx.AsyncClient) -> None:
    r = await app_client.post("/ui/login", content=b"api_key=" + b"x" * (3 * 1024 * 1024), headers=HTML)
    assert r.status_code == 413 and "2 MiB" in r.text


async def test_lists_page_on(app_client: httpx.AsyncClient, seeded: Seeded, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ui, "_LIST", 2)
    first = await page(app_client, "/ui/memories", namespace="acme/eng")
    assert 'href="/ui/memories?namespace=acme%2Feng&amp;offset=2">next 2</a>' in first.text
    second = await page(app_client, "/ui/memories", namespace="acme/eng", offset="2")
    shown = [t for t in ("Deploy order", "Rollback plan", "deploy checklist") if t in second.text]
    assert len(shown) == 1 and shown[0] not in first.text  # three in acme/eng: two, then the third
    bad = await page(app_client, "/ui/memories", offset="many")
    assert bad.status_code == 400 and "offset" in bad.text


async def test_an_imported_id_with_url_characters_links_to_its_page(app_client: httpx.AsyncClient) -> None:
    odd = "imported/a?b#c d"
    memory = {"id": odd, "tier": "long", "namespace": "imp", "title": "Odd id", "content": "kept as is", "tags": [],
              "priority": 5, "confidence": 1.0, "source": "import", "access_count": 0,
              "created_at": "2026-01-01T00:00:00+00:00", "updated_at": "2026-01-01T00:00:00+00:00"}
    imported = await app_client.post("/api/v1/import", json={"memories": [memory]}, headers={"x-api-key": KEY})
    assert imported.json()["imported"] == 1, imported.text
    listed = await page(app_client, "/ui/memories", namespace="imp")
    href = 'href="/ui/memories/imported%2Fa%3Fb%23c%20d"'
    assert href in listed.text
    opened = await page(app_client, "/ui/memories/imported%2Fa%3Fb%23c%20d")
    assert opened.status_code == 200 and "kept as is" in opened.text


async def test_a_signed_write_shows_the_agents_key_beside_the_nodes(app_client: httpx.AsyncClient,
                                                                     node: Node) -> None:
    key = SigningKey.generate()
    api = {"x-api-key": KEY}
    enrollment = sign_registration(key, "dave")
    await node.identity.register_key("dave", enrollment["public_key"], enrollment["timestamp"], enrollment["proof"],
                                     actor="operator", operator=True)  # the first key: the operator enrolls it
    stored = await app_client.post("/api/v1/memories", auth=AgentAuth("dave", key), headers=api, json={
        "title": "Signed", "content": "by dave's own key", "agent_id": "dave"})
    assert stored.status_code == 201, stored.text
    text = (await page(app_client, f"/ui/memories/{stored.json()['id']}")).text
    assert '<span class="badge self_signed">self_signed</span>' in text
    assert f"agent dave key <code>{key_id_for(bytes(key.verify_key))}</code>" in text
    # An unsigned page request may not claim dave: the API's rule holds on /ui too.
    claimed = await app_client.get("/ui", headers={**HTML, **api, "X-Agent-Id": "dave"})
    assert claimed.status_code == 401 and "must be signed" in claimed.text
