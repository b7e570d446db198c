"""How a CLI verb is declared, and the helpers every verb shares."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from producers.runtime.node import Node, NodeConfig
from schemas import Memory

__all__ = ["VerbSpec", "emit", "open_node", "print_memories"]


@dataclass(frozen=True)
class VerbSpec:
    name: str
    help: str
    arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace, NodeConfig], Awaitable[int]]


@asynccontextmanager
async def open_node(config: NodeConfig) -> AsyncIterator[Node]:
    node = await Node.open(config)
    try:
        await node.runner.catch_up()
        yield node
    finally:
        await node.close()


def emit(value: Any) -> None:
    print(json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True))


def print_memories(memories: list[Memory], *, as_json: bool, scores: list[float] | None = None) -> None:
    if as_json:
        rows = [m.to_api() for m in memories]
        if scores is not None:
            rows = [{**row, "score": s} for row, s in zip(rows, scores, strict=True)]
        emit({"memories": rows, "count": len(rows)})
        return
    if not memories:
        print("(no memories)", file=sys.stderr)
    for i, m in enumerate(memories):
        score = f" score={scores[i]:.3f}" if scores is not None else ""
        print(f"{m.id}  [{m.tier}] {m.namespace}  p{m.priority}{score}  {m.title}")
