"""``ai-memory log copy``: a log moves between backends (embedded → NATS → Kafka → embedded) unchanged.

The bodies and signatures arrive byte-identical, a node rebuilt from the last copy equals the original, and
copying again copies nothing.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import uuid
from pathlib import Path

import pytest

from infra.cluster import KafkaBroker, NatsServer
from infra.log import EventLog, LogConfig, LogRecord, copy_log, open_log
from infra.log.embedded import EmbeddedLog
from producers.cli.main import main as cli
from producers.input.commands import parse_create, parse_recall, parse_update
from producers.runtime.node import Node, NodeConfig
from projectors import SQLiteReadModel
from projectors.rebuild import rebuild_sqlite
from schemas import now_ts
from tests.contract.log_contract import read_all
from tests.factories import node_key, signed


async def _busy_node(data_dir: Path) -> Node:
    """A node on the embedded log with every kind of change, across namespaces."""
    node = await Node.open(NodeConfig(data_dir=data_dir))
    await node.start()
    service = node.service
    ids = []
    for i in range(12):
        body = {"title": f"fact {i}", "content": f"about topic{i % 3} and more", "namespace": f"team/{i % 4}"}
        ids.append((await service.store(parse_create(body, now=now_ts()), agent_id="writer")).memory.id)
    await service.recall(parse_recall({"context": "topic1"}), agent_id="reader")
    await service.update(ids[0], parse_update({"namespace": "team/9", "content": "moved"}), agent_id="writer")
    await service.promote(ids[1], agent_id="writer")
    await service.delete(ids[2], agent_id="writer")
    await service.forget(namespace=None, pattern="topic2", tier=None, agent_id="writer")
    return node


def _bytes(records: list[LogRecord]) -> list[tuple[str, bytes, bytes]]:
    return [(r.event.event_id, r.event.body, r.event.signature) for r in records]


async def _open(url: str, tmp: Path) -> EventLog:
    return await open_log(LogConfig(url=url, data_dir=tmp))


@pytest.mark.nats
async def test_copy_embedded_nats_kafka_embedded_rebuilds_the_same_node(
        tmp_path: Path, nats_server: NatsServer, kafka_broker: KafkaBroker) -> None:
    node = await _busy_node(tmp_path / "a")
    name = f"copy-{uuid.uuid4().hex[:8]}"
    urls = [f"sqlite://{tmp_path / 'a' / 'log.db'}", f"{nats_server.url}/{name}", f"{kafka_broker.url}/{name}",
            f"sqlite://{tmp_path / 'back' / 'log.db'}"]
    logs = [node.log] + [await _open(url, tmp_path) for url in urls[1:]]
    original = await read_all(node.log)
    for source, target in itertools.pairwise(logs):
        seen: list[int] = []
        result = await copy_log(source, target, batch=7, progress=seen.append)
        assert (result.copied, result.skipped) == (len(original), 0)
        assert seen == sorted(seen) and seen[-1] == len(original)
        assert sorted(_bytes(await read_all(target))) == sorted(_bytes(original))
    assert _bytes(await read_all(logs[-1])) == _bytes(original)  # and in the same order, after Kafka's merge

    again = await copy_log(logs[2], logs[3])
    assert (again.copied, again.skipped) == (0, len(original))

    rebuilt_path = tmp_path / "rebuilt.db"
    await rebuild_sqlite(logs[-1], node.keyring, rebuilt_path)
    rebuilt = SQLiteReadModel(rebuilt_path)
    assert rebuilt.queries.all_memories() == node.model.queries.all_memories()
    assert rebuilt.rejected_count() == 0 and rebuilt.applied_count() == node.model.applied_count()
    rebuilt.close()
    for log in logs[1:]:
        await log.close()
    await node.close()


async def test_cli_log_copy_is_idempotent(tmp_path: Path, kafka_broker: KafkaBroker,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    node = await _busy_node(tmp_path / "a")
    total = len(await read_all(node.log))
    await node.close()
    target = f"{kafka_broker.url}/cli-{uuid.uuid4().hex[:8]}"
    argv = ["log", "copy", "--to", target, "--data-dir", str(tmp_path / "a"), "--json"]
    assert await asyncio.to_thread(cli, argv) == 0
    out = capsys.readouterr()
    assert json.loads(out.out)["copied"] == total  # (the progress bar shows on a terminal only, on stderr)
    assert await asyncio.to_thread(cli, [*argv, "--quiet"]) == 0
    assert json.loads(capsys.readouterr().out) | {"target_end": None} == {
        "from": f"sqlite://{tmp_path / 'a' / 'log.db'}", "to": target, "copied": 0, "skipped": total,
        "unreadable": 0, "target_end": None}
    assert await asyncio.to_thread(cli, ["log", "copy", "--data-dir", str(tmp_path / "a")]) == 2


async def test_interrupted_copy_resumes_where_the_target_is(tmp_path: Path) -> None:
    """A copy stopped half-way copies only the rest; events the target holds are skipped from any source."""
    key = node_key(tmp_path)
    events = [signed(key) for _ in range(10)]
    source = EmbeddedLog(tmp_path / "source.db")
    await source.append(events)
    source_with_copy = EmbeddedLog(tmp_path / "dup.db", partition="other")
    await source_with_copy.append(events[:3])
    target = EmbeddedLog(tmp_path / "target.db")
    await target.append(events[:4])  # what an interrupted copy left
    result = await copy_log(source, target, batch=3)
    assert (result.copied, result.skipped) == (6, 4)
    assert [r.event.event_id for r in await read_all(target)] == [e.event_id for e in events]
    again = await copy_log(source_with_copy, target)
    assert (again.copied, again.skipped) == (0, 3)
    for log in (source, source_with_copy, target):
        await log.close()
