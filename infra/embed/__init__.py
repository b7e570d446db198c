"""Embeddings: all-MiniLM-L6-v2 offline (a pip-installed wheel, onnxruntime on the CPU or a GPU, no torch), or
an OpenAI-compatible embedding service."""

from __future__ import annotations

from infra.embed.circuit import CircuitBreaker
from infra.embed.embedder import DEVICES, MINILM, Embedder, MiniLMEmbedder, embedding_text, execution_providers
from infra.embed.errors import (
    EmbedAuthError,
    EmbedderConfigError,
    EmbedError,
    EmbedServiceError,
    ModelUnavailableError,
    WrongDimensionError,
)
from infra.embed.model_files import default_cache_dir
from infra.embed.remote import RemoteEmbedder, public_url
from infra.embed.settings import KINDS, EmbedderSettings, embedder_kind, open_remote

__all__ = [
    "DEVICES",
    "KINDS",
    "MINILM",
    "CircuitBreaker",
    "EmbedAuthError",
    "EmbedError",
    "EmbedServiceError",
    "Embedder",
    "EmbedderConfigError",
    "EmbedderSettings",
    "MiniLMEmbedder",
    "ModelUnavailableError",
    "RemoteEmbedder",
    "WrongDimensionError",
    "default_cache_dir",
    "embedder_kind",
    "embedding_text",
    "execution_providers",
    "open_remote",
    "public_url",
]
