"""``POST /v1/embeddings`` on a real uvicorn server over a node with the MiniLM model, and the remote embedder
(the client the other nodes use) against it: the OpenAI shapes, the same vectors as the local model, every bad
request answered with a status and {"error": ...}, batches in flight in order, API key and mutual TLS."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from infra.embed import (
    CircuitBreaker,
    EmbedderSettings,
    EmbedServiceError,
    MiniLMEmbedder,
    RemoteEmbedder,
    open_remote,
)
from producers.cli.certs import make_dev_certs
from producers.runtime.mtls import HttpTls
from producers.runtime.node import Node
from tests.semantic.conftest import open_node
from tests.servers import serving

KEY = "embed-key"
TEXTS = ["Deploy order: run migrations before the deploy", "the cat sat on the mat", "x" * 3000, "é ü 日本語"]


@pytest.fixture
async def served(snode: Node) -> AsyncIterator[str]:
    async for url in serving(snode, api_key=KEY):
        yield url


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    out: np.ndarray = (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return out


async def test_the_openai_shape_with_the_local_models_vectors(served: str, embedder: MiniLMEmbedder) -> None:
    async with httpx.AsyncClient(base_url=served, headers={"Authorization": f"Bearer {KEY}", "X-API-Key": KEY}) as c:
        r = await c.post("/v1/embeddings", json={"input": TEXTS, "model": "all-MiniLM-L6-v2"})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["object"] == "list" and body["model"] == "all-MiniLM-L6-v2"
        assert [d["index"] for d in body["data"]] == [0, 1, 2, 3] and {d["object"] for d in body["data"]} == {
            "embedding"
        }
        assert body["usage"]["prompt_tokens"] == body["usage"]["total_tokens"] > len(TEXTS)
        served_vectors = np.array([d["embedding"] for d in body["data"]], dtype=np.float32)
        local = embedder.embed(TEXTS)
        assert served_vectors.shape == (4, 384) and _cosines(served_vectors, local).min() >= 0.99999
        one = await c.post(
            "/v1/embeddings",
            json={"input": TEXTS[1], "model": "sentence-transformers/all-MiniLM-L6-v2", "encoding_format": "base64"},
        )
        raw = base64.b64decode(one.json()["data"][0]["embedding"])
        assert np.frombuffer(raw, dtype="<f4").tobytes() == local[1].astype("<f4").tobytes()


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({"input": [], "model": "all-MiniLM-L6-v2"}, 400, "non-empty list"),
        ({"input": ["a", ""]}, 400, "input[1] is empty"),
        ({"input": [[101, 2023]]}, 400, "token arrays"),
        ({"input": ["a"] * 2049}, 400, "at most 2048"),
        ({"input": "a", "model": "text-embedding-3-small"}, 404, "this node serves 'all-MiniLM-L6-v2'"),
        ({"input": "a", "encoding_format": "int8"}, 400, "encoding_format"),
        ({"input": "a", "dimensions": 256}, 400, "this model gives 384"),
        (["a"], 400, "JSON object"),
    ],
)
async def test_bad_requests_get_a_status_and_an_error(served: str, body: object, status: int, says: str) -> None:
    async with httpx.AsyncClient(base_url=served, headers={"X-API-Key": KEY}) as c:
        r = await c.post("/v1/embeddings", json=body)
    assert r.status_code == status and says in r.json()["error"], r.text


async def test_without_the_key_it_is_401(served: str) -> None:
    async with httpx.AsyncClient(base_url=served) as c:
        r = await c.post("/v1/embeddings", json={"input": "a"})
    assert r.status_code == 401 and "API key" in r.json()["error"]


async def test_the_remote_embedder_batches_in_order_and_matches_local(served: str, embedder: MiniLMEmbedder) -> None:
    texts = [f"memory number {i}: {'lorem ipsum ' * (i % 7)}" for i in range(150)]
    remote = RemoteEmbedder(f"{served}/v1", "all-MiniLM-L6-v2", api_key=KEY, batch=16, concurrency=4)
    try:
        vectors = await asyncio.to_thread(remote.embed, texts)
        assert remote.counts["requests"] == 10 and remote.dim == 384
        assert _cosines(vectors, embedder.embed(texts)).min() >= 0.99999
        wrong = RemoteEmbedder(f"{served}/v1", "all-MiniLM-L6-v2", api_key="nope", retries=2)
        with pytest.raises(EmbedServiceError, match=r"refused the API key \(401"):
            await asyncio.to_thread(wrong.embed, ["a"])
        assert wrong.counts["requests"] == 1, "a refused key is not retried"
        wrong.close()
    finally:
        remote.close()


async def test_over_mutual_tls(
    snode: Node, tmp_path: Path, embedder: MiniLMEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AI_MEMORY_EMBED_API_KEY", KEY)
    certs = tmp_path / "certs"
    make_dev_certs(certs, ["server", "peer"])
    tls = HttpTls.load(
        str(certs / "server.pem"), str(certs / "server.key"), str(certs / "allowlist"), str(certs / "ca.pem")
    )
    async for url in serving(snode, api_key=KEY, tls=tls):
        settings = EmbedderSettings(
            dim=384, tls_ca=certs / "ca.pem", tls_cert=certs / "peer.pem", tls_key=certs / "peer.key", retries=0
        )
        listed = open_remote(f"{url}/v1", settings)
        anonymous = open_remote(f"{url}/v1", EmbedderSettings(dim=384, tls_ca=certs / "ca.pem", retries=0))
        try:
            vectors = await asyncio.to_thread(listed.embed, TEXTS[:2])
            assert _cosines(vectors, embedder.embed(TEXTS[:2])).min() >= 0.99999
            with pytest.raises(EmbedServiceError, match="cannot reach"):
                await asyncio.to_thread(anonymous.embed, TEXTS[:1])  # no client certificate: no handshake
        finally:
            listed.close()
            anonymous.close()


async def test_a_failing_service_is_retried_then_the_circuit_opens(tmp_path: Path) -> None:
    """A node without a model answers 503: the client retries, opens its circuit, then fails fast."""
    node = await open_node(tmp_path / "no-model", None)
    try:
        async for url in serving(node):
            async with httpx.AsyncClient(base_url=url) as c:
                r = await c.post("/v1/embeddings", json={"input": "a"})
            assert r.status_code == 503 and "no embedding model" in r.json()["error"]
            remote = RemoteEmbedder(
                f"{url}/v1", "all-MiniLM-L6-v2", dim=384, retries=2, breaker=CircuitBreaker(threshold=3, cooldown=60)
            )
            try:
                with pytest.raises(EmbedServiceError, match="answered 503"):
                    await asyncio.to_thread(remote.embed, ["a"])
                assert (remote.counts["requests"], remote.counts["retries"]) == (3, 2)
                assert remote.breaker.state == "open" and not remote.available()
                with pytest.raises(EmbedServiceError, match="circuit open"):
                    await asyncio.to_thread(remote.embed, ["b"])
                assert remote.counts["requests"] == 3, "an open circuit sends nothing"
                assert "answered 503" in (remote.problem() or "")
            finally:
                remote.close()
    finally:
        await node.close()
