"""A recall answers before its touch event is appended; the touch still reaches the log, in order, and reads
that promise read-your-writes see it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from producers.input.commands import parse_create, parse_recall
from producers.runtime.node import Node, NodeConfig
from producers.write.background import BackgroundAppends
from schemas import now_ts
from tests.contract.log_contract import read_all


async def _store(node: Node, title: str, content: str) -> str:
    result = await node.service.store(parse_create({"title": title, "content": content}, now=now_ts()),
                                      agent_id="agent-1")
    return str(result.memory.id)


def _touch_types(types: list[str]) -> int:
    return types.count("memory.touched")


async def test_recall_answers_before_its_touch_and_reads_then_see_it(node: Node) -> None:
    memory_id = await _store(node, "deploy order", "run migrations before the deploy")
    result = await node.service.recall(parse_recall({"context": "migrations"}), agent_id="reader")
    assert [h.memory.id for h in result.memories] == [memory_id]
    # Nothing has yielded since the answer: the touch is not in the read model yet.
    current = node.service.queries.get(memory_id)
    assert current is not None and current.access_count == 0
    after = await node.service.resolve(memory_id)  # a read-your-writes read waits for the pending touch
    assert after.access_count == 1 and after.last_accessed_at is not None


async def test_touches_of_back_to_back_recalls_all_arrive(node: Node) -> None:
    memory_id = await _store(node, "deploy order", "run migrations before the deploy")
    for _ in range(7):
        await node.service.recall(parse_recall({"context": "migrations"}), agent_id="reader")
    await node.writer.background.settle()
    current = node.service.queries.get(memory_id)
    assert current is not None and current.access_count == 7
    types = [r.event.envelope.type for r in await read_all(node.log)]
    assert _touch_types(types) == 7


async def test_close_appends_pending_touches(tmp_path: Path) -> None:
    config = NodeConfig(data_dir=tmp_path / "node")
    node = await Node.open(config)
    await node.start()
    memory_id = await _store(node, "deploy order", "run migrations before the deploy")
    await node.service.recall(parse_recall({"context": "migrations"}), agent_id="reader")
    await node.close()  # no settle: closing must not lose the touch
    reopened = await Node.open(config)
    await reopened.start()
    try:
        assert (await reopened.service.resolve(memory_id)).access_count == 1
    finally:
        await reopened.close()


async def test_a_failed_touch_is_logged_and_the_next_ones_go_on_in_order(caplog: pytest.LogCaptureFixture) -> None:
    touches, done = BackgroundAppends(), []

    def append(n: int) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            await asyncio.sleep(0.01 if n == 0 else 0)  # the first is slowest: order must still hold
            if n == 1:
                raise RuntimeError("log unavailable")
            done.append(n)
        return run

    with caplog.at_level(logging.WARNING, logger="ai_memory.writer"):
        for n in range(4):
            touches.start(append(n))
        await touches.settle()
    assert done == [0, 2, 3]
    assert "a recall's touch) failed" in caplog.text and "log unavailable" in caplog.text
