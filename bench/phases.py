"""The timed loops: stores (in-process, HTTP, baseline), bulk loading, recall, rebuild.

Inputs are built before each loop starts, so a loop times only the operation. Every loop runs one caller,
back to back, as a single agent would.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TypeVar

import httpx
from tqdm import tqdm

from bench.baseline import BaselineDB, Row, read_rows
from bench.corpus import Draft
from bench.server import running_server
from bench.stats import Samples, Summary
from producers.input.commands import CreateCommand, parse_create, parse_recall
from producers.runtime.node import Node, NodeConfig
from projectors import MemoryFilter
from projectors.rebuild import rebuild_sqlite
from schemas import now_ts

__all__ = ["BenchNode", "baseline_rebuild", "baseline_recall", "baseline_store", "http_store", "inprocess_store"]

AGENT = "bench"
BULK_BATCH = 1000
T = TypeVar("T")


def progress(items: Iterable[T], desc: str, total: int | None = None) -> Iterator[T]:
    """``items`` with a progress bar on stderr."""
    yield from tqdm(items, desc=desc, total=total, file=sys.stderr, leave=False, mininterval=0.5, unit="op")


def settle() -> None:
    """Flush dirty pages left by the previous phase, so its writeback does not stall this phase's fsyncs."""
    os.sync()


def _commands(drafts: Sequence[Draft]) -> list[CreateCommand]:
    now = now_ts()
    return [parse_create(d.body(), now=now) for d in drafts]


class BenchNode:
    """A node on a fresh data directory, with its projector following the log as under ``serve``."""

    def __init__(self, node: Node) -> None:
        self.node = node

    @classmethod
    async def open(cls, data_dir: Path) -> BenchNode:
        node = await Node.open(NodeConfig(data_dir=data_dir))
        await node.start()
        return cls(node)

    async def close(self) -> None:
        await self.node.close()

    async def store(self, drafts: Sequence[Draft], *, desc: str) -> Summary:
        """``MemoryService.store`` once per draft."""
        settle()
        samples = Samples()
        for cmd in progress(_commands(drafts), desc, len(drafts)):
            with samples.one():
                await self.node.service.store(cmd, agent_id=AGENT)
        return samples.summary()

    async def load(self, drafts: Sequence[Draft], *, desc: str) -> float:
        """``MemoryService.bulk_store`` in batches of :data:`BULK_BATCH`; return the seconds it took."""
        batches = [_commands(drafts[i:i + BULK_BATCH]) for i in range(0, len(drafts), BULK_BATCH)]
        settle()
        start = time.perf_counter()
        for batch in progress(batches, desc, len(batches)):
            await self.node.service.bulk_store(list(batch), agent_id=AGENT)
        return time.perf_counter() - start

    async def recall(self, contexts: Sequence[str], *, desc: str) -> Summary:
        """``MemoryService.recall`` (gc check + FTS5 query + the touch event it appends)."""
        queries = [parse_recall({"context": c, "limit": 10}) for c in contexts]
        settle()
        samples = Samples()
        for q in progress(queries, desc, len(queries)):
            with samples.one():
                await self.node.service.recall(q, agent_id=AGENT)
        return samples.summary()

    def query_only(self, contexts: Sequence[str], *, desc: str) -> Summary:
        """The read model's keyword query alone (what recall spends outside the write path)."""
        queries = self.node.service.queries
        settle()
        samples = Samples()
        for context in progress(contexts, desc):
            with samples.one():
                queries.recall_keyword(context, MemoryFilter(now=now_ts()), limit=10)
        return samples.summary()

    async def rebuild(self, target: Path) -> tuple[int, float]:
        """Replay the whole log into ``target``; return (events, seconds)."""
        events = sum((await self.node.log.end_offsets()).values())
        bar = tqdm(total=events, desc="rebuild", file=sys.stderr, leave=False, mininterval=0.5, unit="ev")

        def report(done: int, _total: int) -> None:
            bar.update(done - bar.n)

        settle()
        start = time.perf_counter()
        await rebuild_sqlite(self.node.log, self.node.keyring, target, progress=report)
        seconds = time.perf_counter() - start
        bar.close()
        return events, seconds


async def inprocess_store(data_dir: Path, drafts: Sequence[Draft], *, warmup: int) -> Summary:
    bench = await BenchNode.open(data_dir)
    try:
        await bench.store(drafts[:warmup], desc="store warm-up")
        return await bench.store(drafts[warmup:], desc="store in-process")
    finally:
        await bench.close()


def _post_all(client: httpx.Client, drafts: Sequence[Draft], desc: str) -> Summary:
    bodies = [d.body() for d in drafts]
    settle()
    samples = Samples()
    for body in progress(bodies, desc):
        with samples.one():
            response = client.post("/api/v1/memories", json=body, headers={"x-agent-id": AGENT})
        if response.status_code != 201:
            msg = f"POST /api/v1/memories answered {response.status_code}: {response.text[:200]}"
            raise RuntimeError(msg)
    return samples.summary()


def http_store(data_dir: Path, drafts: Sequence[Draft], *, warmup: int) -> Summary:
    """``POST /api/v1/memories`` over one keep-alive connection to a real uvicorn server."""
    with running_server(data_dir) as base_url, httpx.Client(base_url=base_url, timeout=30.0) as client:
        _post_all(client, drafts[:warmup], "HTTP warm-up")
        return _post_all(client, drafts[warmup:], "store over HTTP")


def baseline_store(path: Path, drafts: Sequence[Draft], *, warmup: int) -> Summary:
    db = BaselineDB(path)
    try:
        for draft in drafts[:warmup]:
            db.store(draft)
        settle()
        samples = Samples()
        for draft in progress(drafts[warmup:], "baseline store"):
            with samples.one():
                db.store(draft)
        return samples.summary()
    finally:
        db.close()


def baseline_recall(db: BaselineDB, contexts: Sequence[str], *, desc: str) -> Summary:
    settle()
    samples = Samples()
    for context in progress(contexts, desc):
        with samples.one():
            db.recall(context)
    return samples.summary()


def baseline_rebuild(source: Path, target: Path) -> tuple[int, float]:
    """Insert the rows of the rebuilt read model into a fresh baseline DB; return (rows, seconds)."""
    rows: list[Row] = read_rows(source)
    db = BaselineDB(target, synchronous="NORMAL")
    try:
        settle()
        start = time.perf_counter()
        db.insert_rows(rows)
        return len(rows), time.perf_counter() - start
    finally:
        db.close()
