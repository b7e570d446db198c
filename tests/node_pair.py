"""Nodes of one test cluster: data directories whose node keys trust each other, opened on one log."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path

from producers.runtime.node import Node, NodeConfig
from schemas import load_or_create_node_key

__all__ = ["trust_each_other", "trusting_nodes"]


def trust_each_other(root: Path, names: Sequence[str]) -> None:
    """Give each ``root/<name>`` its node key, and copy every public key into every other node's ``keys/``."""
    for name in names:
        load_or_create_node_key(root / name / "keys", f"node-{name}")
    for name in names:
        for other in names:
            if other != name:
                shutil.copy(root / other / "keys" / f"node-{other}.pub", root / name / "keys")


@asynccontextmanager
async def trusting_nodes(root: Path, config: NodeConfig, names: Sequence[str] = ("a", "b")
                         ) -> AsyncIterator[list[Node]]:
    """Started nodes ``node-<name>`` with ``config`` (its log, stream, quorum…), closed on exit."""
    trust_each_other(root, names)
    nodes: list[Node] = []
    try:
        for name in names:
            node = await Node.open(replace(config, data_dir=root / name, node_id=f"node-{name}"))
            nodes.append(node)
            await node.start()
        yield nodes
    finally:
        for node in nodes:
            await node.close()
