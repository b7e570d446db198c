"""``POST /v1/embeddings``: the node's local model as an OpenAI-compatible embedding service, so one node with
the model (or a GPU) embeds for the fleet and the others point ``--embedder http://that-node:9077/v1`` at it.

Behind the same API key (``X-API-Key``, ``?api_key=``; the other nodes' client sends it in both that header and
``Authorization: Bearer``) and the same mutual TLS as the rest of the API. The request is OpenAI's: ``input`` a
string or a list of strings, ``model`` (this node's model name, with or without ``sentence-transformers/``),
optional ``encoding_format`` (``float`` or ``base64`` of little-endian float32) and ``dimensions`` (only the
model's own). The vectors are the ones the node itself stores: the same model, L2-normalised float32, written
with float32's shortest round-tripping digits, so a client reading them back as float32 gets the same bits.
"""

from __future__ import annotations

import asyncio
import base64
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson
from starlette.responses import Response
from starlette.routing import Route

from infra.embed import EmbedError
from producers.errors import NotFoundError, UnavailableError, ValidationError
from producers.http.base import ApiContext, read_json
from projectors import count_tokens

if TYPE_CHECKING:
    from numpy.typing import NDArray
    from starlette.requests import Request

    from infra.embed import Embedder

__all__ = ["MAX_INPUTS", "EmbeddingRoutes", "parse_embeddings_request", "routes"]

#: Inputs per request, as OpenAI's API (the 2 MiB body limit applies too).
MAX_INPUTS = 2048
_FORMATS = ("float", "base64")
_TOKEN_CHARS = 20_000  # the model reads no more (256 tokens); counting more would only cost time


def parse_embeddings_request(body: Any, *, served: str) -> tuple[list[str], str]:
    """The texts and encoding format of an OpenAI embeddings request for a node serving model ``served``.

    Raises:
        ValidationError: not the OpenAI shape (what is wrong is named).
        NotFoundError: it asks for another model.
    """
    if not isinstance(body, dict):
        raise ValidationError('the body must be a JSON object {"input": ..., "model": ...}')
    texts = _inputs(body.get("input"))
    model = body.get("model")
    if model is not None and model not in (served, f"sentence-transformers/{served}"):
        raise NotFoundError(f"model {model!r} is not served here; this node serves {served!r}")
    encoding = body.get("encoding_format", "float")
    if encoding not in _FORMATS:
        raise ValidationError(f"encoding_format must be one of {', '.join(_FORMATS)} (got {encoding!r})")
    return texts, str(encoding)


def _inputs(value: Any) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise ValidationError("input must be a string or a non-empty list of strings")
    if len(value) > MAX_INPUTS:
        raise ValidationError(f"input holds {len(value)} texts; at most {MAX_INPUTS} per request")
    for index, text in enumerate(value):
        if not isinstance(text, str):
            raise ValidationError(f"input[{index}] is not a string (token arrays are not accepted; send text)")
        if not text:
            raise ValidationError(f"input[{index}] is empty")
    return value


def _data(vectors: NDArray[np.float32], encoding: str) -> list[dict[str, Any]]:
    rows = np.ascontiguousarray(vectors, dtype="<f4")
    if encoding == "base64":
        return [
            {"object": "embedding", "index": i, "embedding": base64.b64encode(row.tobytes()).decode("ascii")}
            for i, row in enumerate(rows)
        ]
    return [{"object": "embedding", "index": i, "embedding": row} for i, row in enumerate(rows)]


class EmbeddingRoutes:
    def __init__(self, api: ApiContext) -> None:
        self.api = api

    def _served_embedder(self) -> Embedder:
        node = self.api.node
        embedder = node.semantic.embedder
        if embedder is None:
            raise UnavailableError(f"this node has no embedding model: {node.semantic.unavailable}")
        if embedder.device == "remote":
            # Serving a service's vectors on would hide where they come from and add a hop: point at it instead.
            raise UnavailableError("this node embeds through another service; point --embedder at that service")
        return embedder

    async def embeddings(self, request: Request) -> Response:
        embedder = self._served_embedder()
        body = await read_json(request)
        texts, encoding = parse_embeddings_request(body, served=embedder.model)
        dimensions = body.get("dimensions")
        if dimensions is not None and dimensions != embedder.dim:
            raise ValidationError(f"dimensions: this model gives {embedder.dim} (got {dimensions!r})")
        loop = asyncio.get_running_loop()
        try:
            vectors = await loop.run_in_executor(None, embedder.embed, texts)
        except EmbedError as exc:
            raise UnavailableError(f"the texts could not be embedded: {exc}") from None
        tokens = sum(count_tokens(t[:_TOKEN_CHARS]) for t in texts)
        self.api.node.metrics.inc("ai_memory_embeddings_served_total", len(texts))
        document = {
            "object": "list",
            "model": embedder.model,
            "data": _data(vectors, encoding),
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
        return Response(orjson.dumps(document, option=orjson.OPT_SERIALIZE_NUMPY), media_type="application/json")


def routes(api: ApiContext) -> list[Route]:
    r = EmbeddingRoutes(api)
    return [Route("/v1/embeddings", api.endpoint(r.embeddings), methods=["POST"])]
