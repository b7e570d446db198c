"""An OpenAI-compatible embedding service as the node's embedder: ``POST {base}/embeddings`` with
``{"input": [...], "model": ...}``, answered with ``{"data": [{"embedding": [...], "index": i}, ...]}``.

That is the API of OpenAI, text-embeddings-inference, vLLM, Ollama's ``/v1`` and of another ``ai-memory serve``
(:mod:`producers.http.embeddings`). Texts go in batches of ``batch``, up to ``concurrency`` batches in flight
(on a link with 50-150 ms of latency, batching and overlap are what keeps bulk ingest near the local model's
rate). Each batch is retried ``retries`` times on a retriable failure (no answer, a timeout, 429, 5xx) with a
short backoff; a :class:`CircuitBreaker` then stops calling a service that keeps failing, so writes do not each
wait out a timeout (they are stored without vectors, which follow later: ``reembed --missing`` or the server's
catch-up). Vectors of another dimension than the node's are refused and counted, never stored. The API key
goes in ``Authorization: Bearer`` (OpenAI and the others) and ``X-API-Key`` (an ai-memory node) and is never
logged or shown.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

import httpx
import numpy as np

from infra.embed.circuit import CircuitBreaker
from infra.embed.embedder import Embedder
from infra.embed.errors import EmbedAuthError, EmbedError, EmbedServiceError, WrongDimensionError

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = ["RemoteEmbedder", "public_url"]

log = logging.getLogger("ai_memory.embed.remote")

_BACKOFF = 0.2  # seconds before the first retry; doubled for each next one
_PROBE_TEXT = "dimension probe"


class RemoteEmbedder(Embedder):
    device = "remote"

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        dim: int | None = None,
        api_key: str | None = None,
        timeout: float = 30.0,
        batch: int = 64,
        retries: int = 2,
        concurrency: int = 2,
        breaker: CircuitBreaker | None = None,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        # A user:password in the URL becomes basic auth, and the URL used, logged and shown in health has none.
        parts = urlsplit(base_url)
        auth = httpx.BasicAuth(unquote(parts.username or ""), unquote(parts.password or "")) if parts.username else None
        self.base_url = public_url(base_url).rstrip("/")
        self.url = self._shown = f"{self.base_url}/embeddings"
        self.model = model
        self.dim = dim or 0  # 0 until the service or --embed-dim says (see :meth:`probe`)
        self.batch = batch
        self.retries = retries
        self.breaker = breaker or CircuitBreaker()
        headers = {"Authorization": f"Bearer {api_key}", "X-API-Key": api_key} if api_key else {}
        self._client = httpx.Client(headers=headers, timeout=timeout, verify=verify, auth=auth)
        self._pool = ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="embed-remote")
        self._lock = threading.Lock()
        self.last_error: str | None = None
        self.counts = {"requests": 0, "failures": 0, "retries": 0, "dim_refusals": 0, "texts": 0}

    # -- the Embedder contract ----------------------------------------------------------------------------

    def embed(self, texts: Sequence[str]) -> NDArray[np.float32]:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        chunks = [list(texts[i : i + self.batch]) for i in range(0, len(texts), self.batch)]
        if len(chunks) == 1:
            return self._batch_with_retries(chunks[0])
        return np.concatenate(list(self._pool.map(self._batch_with_retries, chunks)))

    def available(self) -> bool:
        return self.breaker.state != "open"

    def problem(self) -> str | None:
        if self.last_error is None:
            return None
        state = self.breaker.state
        if state == "closed":
            return f"the last call to the embedding service failed: {self.last_error}"
        return (
            f"the embedding service is failing ({self.last_error}); circuit {state}, "
            f"next try in {self.breaker.retry_in():.1f} s"
        )

    def stats(self) -> dict[str, Any]:
        with self._lock:
            counts = dict(self.counts)
        return {
            "url": self.base_url,
            "circuit": self.breaker.state,
            "circuit_opened_total": self.breaker.opened_total,
            "last_error": self.last_error,
            **counts,
        }

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._client.close()

    def probe(self) -> int:
        """Ask the service once (one request, no retries: a node starting must not wait out the backoff) for a
        vector, and take its dimension as the node's when none was configured.

        Raises:
            EmbedError: the service did not answer usably (the caller decides whether that stops the node).
        """
        try:
            vectors = self._post([_PROBE_TEXT])
        except EmbedServiceError as exc:
            self.breaker.failed()
            self._note(exc, "failures")
            raise
        self.breaker.succeeded()
        return int(vectors.shape[1])

    # -- one batch ----------------------------------------------------------------------------------------

    def _batch_with_retries(self, texts: list[str]) -> NDArray[np.float32]:
        attempt = 0
        while True:
            if not self.breaker.allow():
                msg = (
                    f"the embedding service at {self.base_url} is failing ({self.last_error}); not calling it "
                    f"for {self.breaker.retry_in():.1f} s (circuit open)"
                )
                raise EmbedServiceError(msg)
            try:
                vectors = self._post(texts)
            except WrongDimensionError as exc:
                self.breaker.succeeded()  # the service works; its answer does not fit this node
                self._note(exc, "dim_refusals")
                raise
            except EmbedServiceError as exc:
                self.breaker.failed()
                self._note(exc, "failures")
                if not exc.retriable or attempt >= self.retries:
                    raise
                attempt += 1
                self._count("retries")
                time.sleep(_BACKOFF * 2 ** (attempt - 1))
                continue
            except BaseException:
                self.breaker.failed()  # never leave a half-open probe unreported: the circuit would stay shut
                raise
            self.breaker.succeeded()
            self.last_error = None
            return vectors

    def _note(self, exc: EmbedError, counter: str) -> None:
        self.last_error = str(exc)
        self._count(counter)
        log.warning("embedding service: %s", exc)

    def _count(self, name: str, n: int = 1) -> None:
        with self._lock:
            self.counts[name] += n

    def _post(self, texts: list[str]) -> NDArray[np.float32]:
        self._count("requests")
        try:
            response = self._client.post(self.url, json={"input": texts, "model": self.model})
        except httpx.TimeoutException:
            raise EmbedServiceError(f"no answer from {self._shown} within {self._client.timeout.read} s") from None
        except httpx.HTTPError as exc:
            raise EmbedServiceError(f"cannot reach {self._shown}: {type(exc).__name__} {exc}") from None
        if response.status_code in (401, 403):
            msg = (
                f"{self._shown} refused the API key ({response.status_code}: {_error_text(response)}); "
                "check AI_MEMORY_EMBED_API_KEY / --embed-api-key-file"
            )
            raise EmbedAuthError(msg)
        if response.status_code != 200:
            error = EmbedServiceError(f"{self._shown} answered {response.status_code}: {_error_text(response)}")
            error.retriable = response.status_code == 429 or response.status_code >= 500
            raise error
        vectors = _parse(response, len(texts), self._shown)
        self._count("texts", len(texts))
        if self.dim and vectors.shape[1] != self.dim:
            raise WrongDimensionError(self.dim, int(vectors.shape[1]), self.model)
        if not self.dim:
            self.dim = int(vectors.shape[1])
        return vectors


def public_url(url: str) -> str:
    """``url`` without user and password, for requests, logs and health."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return parts._replace(netloc=netloc).geturl()


def _error_text(response: httpx.Response) -> str:
    """The service's own error message ({"error": "..."} here, {"error": {"message": ...}} at OpenAI)."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:200] or response.reason_phrase
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        error = error.get("message")
    return str(error)[:200] if error else response.text[:200]


def _parse(response: httpx.Response, expected: int, shown: str) -> NDArray[np.float32]:
    """The answer's vectors in input order, L2-normalised (the index searches by inner product).

    Raises:
        EmbedServiceError: not the OpenAI shape, or not one equal-length vector per input.
    """
    try:
        items = response.json()["data"]
        rows = sorted(items, key=lambda item: int(item.get("index", 0)))
        matrix = np.array([row["embedding"] for row in rows], dtype=np.float32)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise EmbedServiceError(f"{shown} answered something else than OpenAI embeddings: {exc}") from None
    if matrix.ndim != 2 or matrix.shape[0] != expected or matrix.shape[1] == 0:
        msg = f"{shown} answered {matrix.shape[0] if matrix.ndim else 0} vectors for {expected} inputs"
        raise EmbedServiceError(msg)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    result: NDArray[np.float32] = (matrix / np.clip(norms, 1e-12, None)).astype(np.float32)
    return result
