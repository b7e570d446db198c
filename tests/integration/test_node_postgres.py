"""Whole nodes on a shared read model: two nodes, one log, one Postgres database or one SQLite file; the CLI's
--read-model, ``migrate`` and ``rebuild --into`` (Postgres and back to SQLite)."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from producers.cli.main import main as cli
from producers.input.commands import parse_create
from producers.runtime.node import Node, NodeConfig
from projectors import MemoryFilter, SQLiteReadModel
from projectors.postgres import PostgresReadModel, head_revision
from schemas import load_or_create_node_key, now_ts


def _config(tmp: Path, name: str, pg_url: str) -> NodeConfig:
    return NodeConfig(data_dir=tmp / name, node_id=f"node-{name}", log_url=f"sqlite:///{tmp / 'log.db'}",
                      read_model_url=pg_url, embedder="off")


@pytest.fixture(params=["postgres", "sqlite"])
async def pair(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[tuple[Node, Node]]:
    """Two nodes on one read model: a Postgres database, or one SQLite file (the nodes of one host)."""
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else str(tmp_path / "shared.db")
    # Nodes sharing a read model must trust the same keys: whichever applies an event decides if it verifies.
    for name in ("a", "b"):
        load_or_create_node_key(tmp_path / name / "keys", f"node-{name}")
    for src, dst in (("a", "b"), ("b", "a")):
        shutil.copy(tmp_path / src / "keys" / f"node-{src}.pub", tmp_path / dst / "keys")
    a = await Node.open(_config(tmp_path, "a", url))
    b = await Node.open(_config(tmp_path, "b", url))
    await a.start()
    await b.start()
    yield a, b
    await b.close()
    await a.close()


def _applied(node: Node) -> float:
    return sum(node.metrics.samples().get("ai_memory_events_applied_total", {}).values())


async def test_two_nodes_share_one_read_model(pair: tuple[Node, Node]) -> None:
    a, b = pair

    async def write(node: Node, prefix: str) -> None:
        for i in range(15):
            await node.service.store(parse_create({"title": f"{prefix} {i}", "content": "shared notes"},
                                                  now=now_ts()), agent_id=prefix)

    await asyncio.gather(write(a, "from-a"), write(b, "from-b"))
    await a.service.sync()
    await b.service.sync()
    end = sum((await a.log.end_offsets()).values())
    # Each event was applied by exactly one of the two nodes; both read all of them.
    assert _applied(a) + _applied(b) == end == a.model.applied_count()
    assert a.model.rejected_count() == 0
    flt = MemoryFilter(now=now_ts())
    for node in (a, b):
        assert len(node.model.queries.list_memories(flt, limit=100, offset=0)) == 30
        hits = node.model.queries.recall_keyword("from-b 7", flt, limit=3)
        assert hits[0].memory.title == "from-b 7"
    assert a.model.position() == b.model.position() == await a.log.end_offsets()


def test_cli_read_model_migrate_and_rebuild_both_ways(tmp_path: Path, postgres_url: str,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    data = ["--data-dir", str(tmp_path / "n")]
    assert cli(["migrate", *data, "--read-model", postgres_url, "--revision", "r0001"]) == 0
    assert "empty -> r0001" in capsys.readouterr().out
    assert cli(["migrate", *data, "--read-model", postgres_url]) == 0
    assert f"r0001 -> {head_revision()}" in capsys.readouterr().out
    for i in range(5):
        assert cli(["store", *data, "--read-model", postgres_url, "-T", f"fact {i}", "-c", f"postgres fact {i}"]) == 0
    assert cli(["recall", *data, "--read-model", postgres_url, "--json", "postgres fact 3"]) == 0
    capsys.readouterr()
    # The node's own SQLite model was never built; rebuild it from the log, and Postgres again from scratch.
    assert cli(["rebuild", *data, "--quiet", "--into", str(tmp_path / "copy.db")]) == 0
    assert cli(["rebuild", *data, "--quiet", "--into", postgres_url]) == 0
    lite, pg = SQLiteReadModel(tmp_path / "copy.db"), PostgresReadModel(postgres_url)
    try:
        assert len(pg.queries.all_memories()) == 5
        assert pg.queries.all_memories() == lite.queries.all_memories()
        flt = MemoryFilter(now=now_ts())
        assert [m.id for m in pg.queries.search("fact 3", flt, limit=5)] == [
            m.id for m in lite.queries.search("fact 3", flt, limit=5)]
        assert pg.position() == lite.position()
    finally:
        lite.close()
        pg.close()


def test_migrate_needs_a_postgres_url(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["migrate", "--data-dir", str(tmp_path)]) == 2
    assert "--read-model" in capsys.readouterr().err
