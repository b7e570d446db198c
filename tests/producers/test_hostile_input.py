"""Hostile input answers 4xx with JSON ``{"error": ...}``, never a server error (issue #20's fuzzing finds).

Each test here failed before its fix: 500s from deep nesting, lone surrogates, integers past 64 bits,
Infinity, NUL bytes in FTS queries (and a Postgres projector stopped by one in metadata) and a non-string
forget pattern; a stored title longer than the checked
one; a 10 s wait on ``sync/since?clock=nope:1``; plain-text 404/405; a partial body held forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from producers.errors import ValidationError
from producers.http import create_app
from producers.http.base import JSONBody
from producers.input.jsonbody import MAX_JSON_DEPTH
from producers.input.validation import check_metadata
from producers.runtime.node import Node
from producers.runtime.serve import http_server
from projectors.fts import fts_query
from tests.conftest import TEST_AGENT
from tests.servers import free_port

DEEP = b"[" * 100_000 + b"]" * 100_000


@pytest.fixture
async def client(node: Node) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(node), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test",
                                 headers={"X-Agent-Id": TEST_AGENT}) as c:
        yield c


def refused(response: httpx.Response, status: int = 400) -> str:
    """The error text of a JSON error answer with ``status``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert isinstance(error, str)
    return error


async def store(client: httpx.AsyncClient, title: str, content: str) -> str:
    r = await client.post("/api/v1/memories", json={"title": title, "content": content})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


@pytest.mark.parametrize(("method", "path"), [
    ("POST", "/api/v1/memories"), ("POST", "/api/v1/memories/bulk"), ("POST", "/api/v1/recall"),
    ("POST", "/api/v1/forget"), ("POST", "/api/v1/check_duplicate"), ("POST", "/api/v1/import"),
    ("POST", "/api/v1/sync/push"), ("POST", "/api/v1/links"), ("POST", "/api/v1/kg/query"),
    ("POST", "/api/v1/subscriptions"), ("POST", "/api/v1/session/start"), ("POST", "/api/v1/notify"),
    ("POST", "/api/v1/namespaces/a/standard"), ("POST", "/api/v1/agents"),
    ("PUT", "/api/v1/memories/x"),
])
async def test_deep_nesting_is_400(client: httpx.AsyncClient, method: str, path: str) -> None:
    assert refused(await client.request(method, path, content=DEEP)) == "JSON nesting depth exceeds limit of 64"


async def test_nesting_limit_sits_above_the_deepest_legitimate_body(client: httpx.AsyncClient) -> None:
    metadata: object = {}
    for _ in range(31):
        metadata = {"x": metadata}
    r = await client.post("/api/v1/import", json={"memories": [{"id": "m1", "title": "t", "content": "c",
                                                                "metadata": metadata}]})
    assert r.status_code == 200, r.text
    deep: object = 1
    for _ in range(MAX_JSON_DEPTH + 1):
        deep = [deep]
    assert "nesting depth exceeds limit of 64" in refused(await client.post("/api/v1/recall", json=deep))


@pytest.mark.parametrize("body", [
    b'{"title": "\\ud800", "content": "x"}',
    b'{"title": "t", "content": "x", "namespace": "a\\udfff"}',
    b'{"title": "t", "content": "x", "metadata": {"\\ud83d": 1}}',
    b'{"title": "t", "content": "x", "tags": ["\\udc00"]}',
])
async def test_lone_surrogates_are_400(client: httpx.AsyncClient, body: bytes) -> None:
    assert "surrogate" in refused(await client.post("/api/v1/memories", content=body))


async def test_surrogate_pairs_are_text(client: httpx.AsyncClient) -> None:
    r = await client.post("/api/v1/memories", content=b'{"title": "\\ud83d\\ude00", "content": "x"}')
    assert r.status_code == 201 and r.json()["title"] == "\U0001f600"


def test_an_error_echoing_a_surrogate_still_renders_as_json() -> None:
    body = bytes(JSONBody({"error": "bad '\ud800'"}).body)
    assert json.loads(body) == {"error": "bad '\ud800'"} and body.isascii()


@pytest.mark.parametrize(("path", "message"), [
    ("/api/v1/memories?offset=" + "9" * 30, "offset must be at most"),
    ("/api/v1/memories?min_priority=" + "9" * 30, "min_priority must be at most"),
    ("/api/v1/memories?limit=" + "9" * 30, "limit must be at most"),
    ("/api/v1/search?q=a&offset=" + "9" * 30, "offset must be at most"),
    ("/api/v1/recall?context=a&budget_tokens=" + "9" * 30, "budget_tokens must be at most"),
    ("/api/v1/archive?offset=" + "9" * 30, "offset must be at most"),
    ("/api/v1/sync/since?clock=ai-memory:" + "9" * 30, "offsets from 0 to 2^63-1"),
    ("/api/v1/sync/since?clock=%7B%22ai-memory%22%3A1e400%7D", "invalid clock"),
    ("/api/v1/pending?limit=" + "\u00b2", "limit must be"),
    ("/api/v1/kg/timeline?source_id=x&limit=" + "\u00b2", "limit must be an integer"),
    ("/api/v1/kg/timeline?source_id=x&as_of=" + "\u00b2", "as_of must be a log offset"),
    ("/api/v1/links/x?as_of=" + "9" * 20, "as_of must be a log offset"),
])
async def test_out_of_range_integers_are_400(client: httpx.AsyncClient, path: str, message: str) -> None:
    assert message in refused(await client.get(path))


async def test_wait_for_header_past_64_bits_or_on_an_unknown_partition_is_400(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/v1/stats", headers={"X-AI-Memory-Wait-For": "ai-memory:" + "9" * 30})
    assert "2^63-1" in refused(r)
    started = time.monotonic()
    r = await client.get("/api/v1/stats", headers={"X-AI-Memory-Wait-For": "nope:1"})
    assert "unknown partition 'nope'" in refused(r) and time.monotonic() - started < 3


async def test_purge_older_than_the_calendar_purges_nothing(client: httpx.AsyncClient) -> None:
    memory = await store(client, "old", "archived")
    assert (await client.post("/api/v1/archive", json={"ids": [memory]})).status_code == 200
    r = await client.delete(f"/api/v1/archive?older_than_days={2**63 - 1}")
    assert r.status_code == 200 and r.json()["purged"] == 0, r.text
    too_many = await client.delete("/api/v1/archive?older_than_days=1" + "0" * 19)
    assert "older_than_days must be at most" in refused(too_many)


@pytest.mark.parametrize("body", [
    b'{"context": "a", "limit": Infinity}', b'{"context": "a", "limit": 1e400}', b'{"context": "a", "limit": NaN}',
    b'{"context": "a", "since": -Infinity}',
    b'{"context": "a", "limit": 1' + b"0" * 5000 + b"}",
])
async def test_non_finite_and_endless_numbers_are_400(client: httpx.AsyncClient, body: bytes) -> None:
    error = refused(await client.post("/api/v1/recall", content=body))
    assert "Infinity" in error or "out of range" in error or "4300 digits" in error


@pytest.mark.parametrize("read_model", ["sqlite", "postgres"], indirect=True)
async def test_nul_is_refused_everywhere_and_cannot_stop_the_projector(client: httpx.AsyncClient) -> None:
    """A NUL in a query ended SQLite's FTS query (500); one in stored metadata stopped a Postgres projector for
    good (every later request 503)."""
    for path in ("/api/v1/search?q=alpha%00beta", "/api/v1/recall?context=a%00", "/api/v1/memories?tags=a%00",
                 "/api/v1/entities/by_alias?alias=a%00", "/api/v1/subscriptions/dlq?subscription_id=%00",
                 "/api/v1/memories/a%00b", "/api/v1/links/%00"):
        assert refused(await client.get(path)) == "NUL (%00) is not allowed in a URL"
    for body in ({"context": "\x00delta"}, {"context": "a", "tags": "a\x00"}):
        assert "NUL" in refused(await client.post("/api/v1/recall", json=body))
    assert "NUL" in refused(await client.post("/api/v1/forget", json={"pattern": "gamma\x00delta"}))
    stored = await client.post("/api/v1/memories", json={"title": "a", "content": "c", "metadata": {"k": "a\x00b"}})
    assert "NUL" in refused(stored)
    memory = await store(client, "alpha beta", "gamma delta")  # the projector still applies and serves
    assert [m["id"] for m in (await client.get("/api/v1/memories")).json()["memories"]] == [memory]


def test_control_characters_separate_fts_words() -> None:
    """The read side's own guard (the CLI and other callers reach it without the HTTP boundary)."""
    assert fts_query("alpha\x00beta\x1fgamma", use_or=False) == '"alpha" "beta" "gamma"'


def test_cli_metadata_is_held_to_the_same_rules() -> None:
    with pytest.raises(ValidationError, match="NUL"):
        check_metadata({"k": ["a\x00"]})


@pytest.mark.parametrize("pattern", [5, ["x"], {"a": 1}, True])
async def test_forget_pattern_must_be_a_string(client: httpx.AsyncClient, pattern: object) -> None:
    assert refused(await client.post("/api/v1/forget", json={"pattern": pattern})) == "pattern must be a string"


async def test_the_title_checked_is_the_title_stored(client: httpx.AsyncClient) -> None:
    r = await client.post("/api/v1/memories", json={"title": " " * 600_000 + "t" * 512 + " " * 600_000,
                                                    "content": "x", "tags": ["  tag  "]})
    assert r.status_code == 201 and r.json()["title"] == "t" * 512
    memory = (await client.get(f"/api/v1/memories/{r.json()['id']}")).json()
    assert memory["title"] == "t" * 512 and memory["tags"] == ["tag"]
    r = await client.put(f"/api/v1/memories/{memory['id']}", json={"title": "  u  "})
    assert r.status_code == 200 and r.json()["title"] == "u"


async def test_sync_since_unknown_partition_is_400_at_once(client: httpx.AsyncClient) -> None:
    started = time.monotonic()
    assert "unknown partition 'nope'" in refused(await client.get("/api/v1/sync/since?clock=nope:1"))
    r = await client.get("/api/v1/sync/since?clock=ai-memory:999999")  # past the end: nothing yet, no wait
    assert r.status_code == 200 and r.json()["events"] == []
    assert time.monotonic() - started < 3


async def test_unknown_routes_and_methods_answer_json(client: httpx.AsyncClient) -> None:
    assert refused(await client.get("/api/v1/nope"), 404) == "not found: GET /api/v1/nope"
    r = await client.patch("/api/v1/memories")
    assert refused(r, 405) == "method not allowed: PATCH /api/v1/memories"
    assert set(r.headers["allow"].replace(" ", "").split(",")) == {"GET", "POST", "HEAD"}


async def test_a_partial_body_times_out_with_408(node: Node) -> None:
    """A real uvicorn: a client that sends half its body and stops gets 408 and a closed connection."""
    port = free_port()
    server = http_server(create_app(node, body_timeout=0.5), host="127.0.0.1", port=port)
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            await asyncio.sleep(0.02)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"POST /api/v1/memories HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 100\r\n\r\n{\"title\":")
        await writer.drain()
        started = time.monotonic()
        answer = await asyncio.wait_for(reader.read(), timeout=10)  # read() returns when the server closes
        assert time.monotonic() - started < 3  # closed with the answer, not at the keep-alive timeout (5 s)
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 408"), answer
        assert json.loads(body) == {"error": "request body not received within 0.5 s"}
        writer.close()
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 10)


@pytest.mark.parametrize(("since", "message"), [
    ("\u00b2", "since must be an RFC 3339 timestamp or a log offset"),
    ("9" * 30, "since as a log offset must be at most"),
    ("9" * 5000, "since as a log offset must be at most"),
])
async def test_subscription_replay_since_is_checked(client: httpx.AsyncClient, since: str, message: str) -> None:
    owner = {"X-Agent-Id": "alice"}
    sub = await client.post("/api/v1/subscriptions", json={"url": "https://hooks.example.com/in", "secret": "s"},
                            headers=owner)
    assert sub.status_code == 201, sub.text
    r = await client.get("/api/v1/subscriptions/replay", params={"subscription_id": sub.json()["id"], "since": since},
                         headers=owner)
    assert message in refused(r)


@pytest.mark.parametrize("timestamp", [b"\xb2", b"9" * 5000])
async def test_a_bad_signature_timestamp_is_401(client: httpx.AsyncClient, timestamp: bytes) -> None:
    headers = [(b"x-agent-id", b"alice"), (b"x-agent-key-id", b"k"), (b"x-agent-timestamp", timestamp),
               (b"x-agent-nonce", b"n" * 16), (b"x-agent-signature", b"s")]
    assert "bad timestamp" in refused(await client.get("/api/v1/stats", headers=headers), 401)


@pytest.mark.parametrize("read_model", ["sqlite", "postgres"], indirect=True)
@pytest.mark.parametrize("route", ["/api/v1/import", "/api/v1/sync/push"])
@pytest.mark.parametrize("count", [10**30, 2**40])
async def test_an_imported_count_past_the_columns_is_400_and_cannot_stop_the_projector(
        client: httpx.AsyncClient, route: str, count: int) -> None:
    """It was appended, then stopped the projector (SQLite holds 64 bits, Postgres's column 32): every later
    request failed."""
    memory = {"id": "m1", "title": "t", "content": "c", "tier": "mid", "namespace": "global", "tags": [],
              "priority": 5, "confidence": 1.0, "source": "api", "access_count": count,
              "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z"}
    r = await client.post(route, json={"sender_agent_id": "peer", "memories": [memory]})
    assert r.status_code in (200, 400), r.text
    assert "access_count must be at most" in json.dumps(r.json())  # 400, or listed among the errors
    assert (await client.post("/api/v1/memories", json={"title": "after", "content": "c"})).status_code == 201
