"""The pushed tail of a JetStream stream: contiguous records, served from where a read starts."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from nats.aio.msg import Msg

from infra.log import LogRecord
from infra.log.jetstream_tail import StoredTail
from tests.factories import node_key, signed


@pytest.fixture
def records(tmp_path: Path) -> Callable[[range], list[LogRecord]]:
    key = node_key(tmp_path)
    return lambda offsets: [LogRecord("s", offset, signed(key)) for offset in offsets]


def _unused(seq: int, msg: Msg) -> LogRecord:
    raise AssertionError("these tests add records directly")


def _tail(capacity: int = 4096) -> StoredTail:
    return StoredTail(_unused, capacity=capacity)


def test_take_answers_from_the_start_asked_and_nothing_outside(records: Callable[[range], list[LogRecord]]) -> None:
    tail = _tail()
    for record in records(range(5, 10)):
        tail.add(record)
    assert [r.offset for r in tail.take(7, 10)] == [7, 8, 9]
    assert [r.offset for r in tail.take(5, 2)] == [5, 6]
    assert tail.take(4, 10) == []  # before the first held: the caller reads the stream
    assert tail.take(10, 10) == []  # nothing beyond the last yet


def test_a_replay_is_ignored_and_a_gap_restarts_the_run(records: Callable[[range], list[LogRecord]]) -> None:
    tail = _tail()
    first = records(range(1, 4))
    for record in first + first[1:]:  # a re-created consumer delivers 2 and 3 again
        tail.add(record)
    assert [r.offset for r in tail.take(1, 10)] == [1, 2, 3]
    for record in records(range(7, 9)):  # 4..6 never pushed: never served as if contiguous
        tail.add(record)
    assert tail.take(1, 10) == []
    assert (tail.first, tail.last) == (7, 8)


def test_capacity_keeps_the_newest(records: Callable[[range], list[LogRecord]]) -> None:
    tail = _tail(capacity=3)
    for record in records(range(1, 7)):
        tail.add(record)
    assert (tail.first, tail.last) == (4, 6)
    assert tail.take(3, 5) == []


async def test_wait_beyond_wakes_on_a_later_record_only(records: Callable[[range], list[LogRecord]]) -> None:
    tail = _tail()
    tail.add(records(range(1, 2))[0])
    started = time.monotonic()
    await tail.wait_beyond(1, 0.1)  # nothing after 1: times out
    assert time.monotonic() - started >= 0.09
    waiter = asyncio.create_task(tail.wait_beyond(1, 5))
    await asyncio.sleep(0.01)
    tail.add(records(range(2, 3))[0])
    started = time.monotonic()
    await asyncio.wait_for(waiter, 1)
    assert time.monotonic() - started < 0.5


def test_take_from_a_full_tail_answers_from_anywhere_it_holds(records: Callable[[range], list[LogRecord]]) -> None:
    tail = _tail(capacity=100)
    for record in records(range(1, 301)):
        tail.add(record)
    assert (tail.first, tail.last) == (201, 300)
    assert [r.offset for r in tail.take(201, 2)] == [201, 202]
    assert [r.offset for r in tail.take(250, 3)] == [250, 251, 252]
    assert [r.offset for r in tail.take(298, 10)] == [298, 299, 300]
    assert tail.take(200, 1) == []
