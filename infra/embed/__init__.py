"""Embeddings, offline: all-MiniLM-L6-v2 from a pip-installed wheel, run on onnxruntime without torch."""

from __future__ import annotations

from infra.embed.embedder import MINILM, Embedder, MiniLMEmbedder, embedding_text
from infra.embed.errors import EmbedError, ModelUnavailableError
from infra.embed.model_files import default_cache_dir

__all__ = [
    "MINILM",
    "EmbedError",
    "Embedder",
    "MiniLMEmbedder",
    "ModelUnavailableError",
    "default_cache_dir",
    "embedding_text",
]
