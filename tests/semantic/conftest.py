"""Fixtures for semantic recall: one real MiniLM embedder for the session (loading costs ~1 s), nodes that use it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from infra.embed import MiniLMEmbedder
from producers.node import Node, NodeConfig


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("model-cache")


@pytest.fixture(scope="session")
def embedder(model_cache: Path) -> MiniLMEmbedder:
    return MiniLMEmbedder.load(model_cache)


async def open_node(data_dir: Path, embedder: MiniLMEmbedder | None, **config: object) -> Node:
    """A node on the embedded log with the given embedder (None: keyword mode), projectors running."""
    node = await Node.open(NodeConfig(data_dir=data_dir, embedder="off", **config))  # type: ignore[arg-type]
    if embedder is not None:
        node.semantic.embedder = embedder
        node.semantic.unavailable = None
    await node.start()
    return node


@pytest.fixture
async def snode(tmp_path: Path, embedder: MiniLMEmbedder) -> AsyncIterator[Node]:
    node = await open_node(tmp_path / "node", embedder)
    yield node
    await node.close()
