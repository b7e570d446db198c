"""Session fixtures. Servers (nats-server, ...) are started here on free loopback ports, never assumed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from producers.node import Node, NodeConfig


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[Node]:
    """A T1 node on the embedded log, projector running in the background."""
    n = await Node.open(NodeConfig(data_dir=tmp_path / "node"))
    await n.start()
    yield n
    await n.close()
