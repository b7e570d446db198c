"""Signature checks in a child process (projectors/verifier.py) judge exactly as the in-process check does."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.log import LogRecord
from producers.input.commands import CreateCommand, parse_create
from producers.runtime.node import Node
from projectors import ProjectionRunner, SQLiteReadModel, verifier
from projectors.rebuild import rebuild_sqlite
from projectors.verifier import ProcessVerifier
from schemas import Keyring, SignedEvent, load_or_create_node_key, now_ts
from tests.factories import node_key, signed


def _records(tmp_path: Path) -> tuple[list[LogRecord], Keyring]:
    key = node_key(tmp_path)
    intruder = load_or_create_node_key(tmp_path / "other", "intruder")
    good = [signed(key, payload={"id": f"m{i}"}) for i in range(5)]
    forged_body = good[1].body.replace(b'"id":"m1"', b'"id":"mX"')
    events = [*good,
              SignedEvent.from_parts(forged_body, good[1].signature),  # a body changed after signing
              signed(intruder),  # a key this node does not trust
              SignedEvent(good[2].body, b"short", good[2].envelope)]  # not even a signature's length
    records = [LogRecord("p", n + 1, e) for n, e in enumerate(events)]
    return records, Keyring({key.key_id: key.public_bytes})


async def test_child_process_judges_as_the_thread_does(tmp_path: Path) -> None:
    records, keyring = _records(tmp_path)
    runner = ProjectionRunner(None, SQLiteReadModel(":memory:"), keyring)  # type: ignore[arg-type]
    verifier = ProcessVerifier(keyring)
    try:
        in_child = await verifier.judge(records)
        again = await verifier.judge(records[::-1])  # the same child, a second batch
    finally:
        verifier.close()
    in_thread = runner.judge_all(records)
    assert [v.rejected for v in in_child] == [v.rejected for v in in_thread]
    assert [v.rejected is None for v in in_child] == [True] * 5 + [False] * 3
    assert [v.rejected for v in again] == [v.rejected for v in in_thread][::-1]


@pytest.mark.parametrize("in_child", [False, True], ids=["thread", "child-process"])
async def test_rebuild_equals_live_model_either_way(node: Node, tmp_path: Path, in_child: bool) -> None:
    for i in range(40):
        await node.service.store(_create(f"m{i}", f"content {i} about topic{i % 3}"), agent_id="a")
    target = tmp_path / "rebuilt.db"
    await rebuild_sqlite(node.log, node.keyring, target, verify_in_child=in_child)
    rebuilt = SQLiteReadModel(target)
    try:
        assert rebuilt.queries.all_memories() == node.model.queries.all_memories()
        assert rebuilt.position() == node.model.position()
        assert rebuilt.rejected_count() == 0
    finally:
        rebuilt.close()


def _create(title: str, content: str) -> CreateCommand:
    return parse_create({"title": title, "content": content, "namespace": "v"}, now=now_ts())


async def test_catch_up_goes_to_the_child_when_far_behind(node: Node, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """``catch_up`` decides by the runner's lag: behind by PROCESS_FROM or more, signatures go to the child."""
    for i in range(12):
        await node.service.store(_create(f"n{i}", f"lagging {i}"), agent_id="a")
    started: list[ProcessVerifier] = []

    class Counted(ProcessVerifier):
        def __init__(self, keyring: Keyring) -> None:
            super().__init__(keyring)
            started.append(self)

    monkeypatch.setattr(verifier, "ProcessVerifier", Counted)
    monkeypatch.setattr(verifier, "PROCESS_FROM", 10)
    near = SQLiteReadModel(tmp_path / "near.db")
    far = SQLiteReadModel(tmp_path / "far.db")
    try:
        behind = ProjectionRunner(node.log, far, node.keyring)
        assert await behind.lag() == sum((await node.log.end_offsets()).values())
        await verifier.catch_up(behind)
        assert len(started) == 1 and await behind.lag() == 0
        assert far.queries.all_memories() == node.model.queries.all_memories()
        monkeypatch.setattr(verifier, "PROCESS_FROM", 10**6)
        await verifier.catch_up(ProjectionRunner(node.log, near, node.keyring))
        assert len(started) == 1  # a short way behind: checked in a thread
        assert near.queries.all_memories() == node.model.queries.all_memories()
    finally:
        near.close()
        far.close()
