"""Embeddings: a local sentence model offline (all-MiniLM-L6-v2 or all-mpnet-base-v2 from pip-installed wheels,
onnxruntime on the CPU or a GPU, no torch), or an OpenAI-compatible embedding service."""

from __future__ import annotations

from infra.embed.catalog import LOCAL_MODELS, MPNET, LocalModel, default_local_model, local_model
from infra.embed.circuit import CircuitBreaker
from infra.embed.embedder import (
    DEVICES,
    MINILM,
    Embedder,
    LocalEmbedder,
    MiniLMEmbedder,
    embedding_text,
    execution_providers,
)
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
    "LOCAL_MODELS",
    "MINILM",
    "MPNET",
    "CircuitBreaker",
    "EmbedAuthError",
    "EmbedError",
    "EmbedServiceError",
    "Embedder",
    "EmbedderConfigError",
    "EmbedderSettings",
    "LocalEmbedder",
    "LocalModel",
    "MiniLMEmbedder",
    "ModelUnavailableError",
    "RemoteEmbedder",
    "WrongDimensionError",
    "default_cache_dir",
    "default_local_model",
    "embedder_kind",
    "embedding_text",
    "execution_providers",
    "local_model",
    "open_remote",
    "public_url",
]
