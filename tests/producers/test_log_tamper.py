"""Tampering with the embedded log shows: rows deleted or moved break a writer's hash chain (``verify``, ``rebuild``,
status), and a row that is not an event is reported and skipped by every reader instead of stopping it."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from infra.log import AppendConflictError, Clock, LogPosition
from producers.cli.main import main
from producers.input.commands import parse_create
from producers.memory.wire import stats_body
from producers.runtime.node import Node, NodeConfig
from producers.runtime.status import cluster_status
from producers.sync.service import since_clock
from schemas import SignedEvent, now_ts
from schemas.events import MemoryStored


@pytest.fixture(autouse=True)
def _no_embedder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AI_MEMORY_EMBEDDER", "off")  # one event per store (no memory.embedded beside it)


def run(capsys: pytest.CaptureFixture[str], data: Path, *args: str) -> tuple[int, str]:
    code = main([args[0], "--data-dir", str(data), *args[1:]])
    return code, capsys.readouterr().out


async def _store(node: Node, title: str) -> str:
    stored = await node.service.store(parse_create({"title": title, "content": "x"}, now=now_ts()), agent_id="a")
    return stored.memory.id


async def _secret_stored_deleted_then_more(data: Path) -> str:
    """One node run (one chain epoch): store "secret", delete it, store two more. Returns the secret's id."""
    async with await Node.open(NodeConfig(data_dir=data)) as node:
        await node.start()
        secret = await _store(node, "secret")
        await node.service.delete(secret, agent_id="a")
        await _store(node, "after")
        await _store(node, "last")
    return secret


async def _started_status(data: Path) -> dict[str, Any]:
    """Start a node on ``data`` (catching up with the whole log), and return its status page's document."""
    async with await Node.open(NodeConfig(data_dir=data)) as node:
        await node.start()
        status = await cluster_status(node)
        status["memories_titles"] = sorted(m.title for m in node.model.queries.all_memories())
        status["stats"] = (await stats_body(node))["projector"]
        status["sync_types"] = [e["type"] for e in (await since_clock(node.service, {}, None))["events"]]
        return status


def _log_rows(data: Path, sql: str, *params: object) -> None:
    db = sqlite3.connect(data / "log.db")
    db.execute(sql, params)
    db.commit()
    db.close()


def _delete_event_of_type(data: Path, event_type: str) -> None:
    _log_rows(data, "DELETE FROM events WHERE json_extract(body, '$.type') = ?", event_type)


def test_a_deleted_row_breaks_the_chain_and_rebuild_keeps_the_old_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = asyncio.run(_secret_stored_deleted_then_more(tmp_path))
    code, out = run(capsys, tmp_path, "verify", "--quiet", "--json")
    assert code == 0 and json.loads(out)["chain"]["breaks"] == [] and json.loads(out)["chain"]["chained"] == 4
    _delete_event_of_type(tmp_path, "memory.deleted")  # the attack: cut the deletion out of the log

    code, out = run(capsys, tmp_path, "verify", "--quiet", "--json")
    report = json.loads(out)
    assert code == 8 and report["bad"] == [] and report["ok"] is False
    assert [(b["kind"], b["seq"]) for b in report["chain"]["breaks"]] == [("missing", 2)]
    code, out = run(capsys, tmp_path, "verify", "--quiet")
    assert code == 8 and "BREAK chain" in out and "seq 2 not in the log" in out

    code, out = run(capsys, tmp_path, "rebuild", "--quiet", "--json")
    assert code == 8 and json.loads(out)["refused"] is True
    code, out = run(capsys, tmp_path, "list", "--json")
    assert secret not in out  # the old read model stayed: the deleted memory did not come back

    code, out = run(capsys, tmp_path, "rebuild", "--quiet", "--json", "--allow-breaks")
    assert code == 0 and [b["kind"] for b in json.loads(out)["chain_breaks"]] == ["missing"]


def test_a_moved_row_is_a_reorder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    asyncio.run(_secret_stored_deleted_then_more(tmp_path))
    # Swap the bodies (and signatures) of offsets 1 and 2: the delete now comes before the store.
    db = sqlite3.connect(tmp_path / "log.db")
    rows = db.execute(
        'SELECT "offset", event_id, body, signature FROM events WHERE "offset" IN (1, 2) ORDER BY "offset"'
    ).fetchall()
    db.execute('DELETE FROM events WHERE "offset" IN (1, 2)')
    for (offset, *_), (_, event_id, body, signature) in zip(rows, reversed(rows), strict=True):
        db.execute(
            'INSERT INTO events ("offset", event_id, body, signature) VALUES (?, ?, ?, ?)',
            (offset, event_id, body, signature),
        )
    db.commit()
    db.close()
    code, out = run(capsys, tmp_path, "verify", "--quiet", "--json")
    assert code == 8 and [b["kind"] for b in json.loads(out)["chain"]["breaks"]] == ["reordered"]


def test_a_cut_tail_shows_only_against_a_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    asyncio.run(_secret_stored_deleted_then_more(tmp_path))
    checkpoint = tmp_path / "elsewhere" / "chain.json"
    checkpoint.parent.mkdir()
    code, _ = run(capsys, tmp_path, "verify", "--quiet", "--checkpoint", str(checkpoint))
    assert code == 0 and checkpoint.exists()
    _log_rows(tmp_path, 'DELETE FROM events WHERE "offset" = (SELECT max("offset") FROM events)')
    assert run(capsys, tmp_path, "verify", "--quiet")[0] == 0  # nothing later names the last event
    code, out = run(capsys, tmp_path, "verify", "--quiet", "--json", "--checkpoint", str(checkpoint))
    assert code == 8 and [(b["kind"], b["seq"]) for b in json.loads(out)["chain"]["breaks"]] == [("truncated", 4)]
    checkpoint.write_text("{nope")
    assert run(capsys, tmp_path, "verify", "--quiet", "--checkpoint", str(checkpoint))[0] == 2


async def _refused_between_two_stores(data: Path) -> None:
    async with await Node.open(NodeConfig(data_dir=data)) as node:
        await node.start()
        await _store(node, "first")
        memory = await node.service.resolve(await _store(node, "second"))
        log = node.writer.log
        append = log.append

        async def stale(signed: Sequence[SignedEvent], *, expected: Clock | None = None,
                        new: bool = False) -> list[LogPosition]:
            return await append(signed, expected={"ai-memory": 0}, new=new)

        # The log itself refuses the next batch (a stale expected end: nothing is written), as a log may refuse
        # any append; the writer never appends conditionally, so the refusal is asked for here.
        log.append = stale  # type: ignore[method-assign,assignment]
        try:
            with pytest.raises(AppendConflictError):  # signed (seq 3), then refused by the log: never stored
                await node.writer.append([(MemoryStored(memory=memory), "global")], actor="a")
        finally:
            del log.append
        await _store(node, "third")


def test_a_failed_append_leaves_no_break(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    asyncio.run(_refused_between_two_stores(tmp_path))
    code, out = run(capsys, tmp_path, "verify", "--quiet", "--json")
    assert code == 0, out
    assert json.loads(out)["chain"]["chained"] == 3


def test_restarts_and_cli_runs_are_new_epochs_of_one_clean_log(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    asyncio.run(_secret_stored_deleted_then_more(tmp_path))
    for i in range(2):
        assert run(capsys, tmp_path, "store", "-T", f"cli {i}", "-c", "x")[0] == 0
    asyncio.run(_secret_stored_deleted_then_more(tmp_path / "other"))  # another node's key: not trusted here, not mixed
    code, out = run(capsys, tmp_path, "verify", "--quiet", "--json")
    chain = json.loads(out)["chain"]
    assert code == 0 and chain["epochs"] == 3 and chain["chained"] == 6 and chain["breaks"] == []


def test_a_node_started_on_a_broken_log_says_so_in_its_status(tmp_path: Path) -> None:
    asyncio.run(_secret_stored_deleted_then_more(tmp_path))
    _delete_event_of_type(tmp_path, "memory.deleted")
    (tmp_path / "readmodel.db").unlink()  # a fresh read model replays the whole log
    status = asyncio.run(_started_status(tmp_path))
    assert status["log_chain"]["breaks"] == 1 and "missing" in status["log_chain"]["first_breaks"][0]
    assert status["stats"]["chain_breaks"] == 1


def test_an_unreadable_row_is_reported_and_skipped_everywhere(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    asyncio.run(_secret_stored_deleted_then_more(tmp_path))
    _log_rows(
        tmp_path,
        "INSERT INTO events (event_id, body, signature) VALUES (?, ?, ?)",
        uuid.uuid4().hex,
        b"\xff\xfe not an event",
        b"",
    )
    assert run(capsys, tmp_path, "store", "-T", "after the bad row", "-c", "x")[0] == 0

    code, out = run(capsys, tmp_path, "verify", "--quiet", "--json")
    report = json.loads(out)
    assert code == 8 and report["checked"] == 6 and report["chain"]["breaks"] == []
    assert [(b["offset"], b["error"].split(":")[0]) for b in report["bad"]] == [(5, "unreadable record")]
    code, out = run(capsys, tmp_path, "log", "tail", "--json")
    assert code == 0 and [json.loads(line).get("unreadable") is not None for line in out.splitlines()] == [
        False,
        False,
        False,
        False,
        True,
        False,
    ]
    code, out = run(capsys, tmp_path, "rebuild", "--quiet", "--json")
    assert code == 0 and json.loads(out)["position"] == {"ai-memory": 6}
    code, out = run(capsys, tmp_path, "stats", "--json")
    assert code == 0 and json.loads(out)["total"] == 3 and json.loads(out)["projector"]["rejected_events"] == 1
    (tmp_path / "readmodel.db").unlink()
    status = asyncio.run(_started_status(tmp_path))  # what `serve` starts with
    assert "log.unreadable" not in status["sync_types"] and len(status["sync_types"]) == 5
    assert status["read_models"]["memories"]["rejected"] == 1 and status["memories_titles"] == [
        "after",
        "after the bad row",
        "last",
    ]


def test_a_postgres_rebuild_refuses_a_broken_log_before_emptying_the_model(
    tmp_path: Path, postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from projectors.postgres import PostgresReadModel

    asyncio.run(_secret_stored_deleted_then_more(tmp_path))
    assert run(capsys, tmp_path, "rebuild", "--quiet", "--into", postgres_url)[0] == 0
    _delete_event_of_type(tmp_path, "memory.deleted")
    code, out = run(capsys, tmp_path, "rebuild", "--quiet", "--json", "--into", postgres_url)
    assert code == 8 and json.loads(out)["refused"] is True
    model = PostgresReadModel(postgres_url)
    try:  # not emptied: the audit ran before the rebuild reset anything
        assert sorted(m.title for m in model.queries.all_memories()) == ["after", "last"]
    finally:
        model.close()


def test_a_cli_run_cut_from_the_log_shows_once_the_node_writes_again(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each CLI verb is an epoch of its own; the next one follows the node's newest event, so the one-event epoch
    of a `delete` cut from the log leaves a link to nothing."""
    code, out = run(capsys, tmp_path, "store", "-T", "secret", "-c", "x", "--json")
    secret = json.loads(out)["id"]
    assert run(capsys, tmp_path, "delete", secret)[0] == 0
    assert run(capsys, tmp_path, "store", "-T", "later", "-c", "x")[0] == 0
    code, out = run(capsys, tmp_path, "log", "tail", "--json")
    chains = [json.loads(line)["chain"] for line in out.splitlines()]
    assert [c["seq"] for c in chains] == [1, 1, 1] and len({c["epoch"] for c in chains}) == 3
    assert [c.get("follows", {}).get("epoch") for c in chains] == [None, chains[0]["epoch"], chains[1]["epoch"]]
    assert run(capsys, tmp_path, "verify", "--quiet")[0] == 0
    _delete_event_of_type(tmp_path, "memory.deleted")
    code, out = run(capsys, tmp_path, "verify", "--quiet", "--json")
    breaks = json.loads(out)["chain"]["breaks"]
    assert code == 8 and [(b["kind"], b["seq"]) for b in breaks] == [("missing", 1)]
    assert "is not in the log" in breaks[0]["detail"]


async def _two_writers_racing(data: Path) -> None:
    """Two nodes on one data directory (a server and a CLI verb, say) registering agents at once. No command
    appends conditionally (issue #14: the projectors decide in log order), so no append is lost to the other
    writer and no seq is burnt."""
    async with await Node.open(NodeConfig(data_dir=data)) as one, await Node.open(NodeConfig(data_dir=data)) as two:
        await one.start()
        await two.start()
        await asyncio.gather(*(node.governance.register_agent(f"{name}-{i}", "ai:test", [])
                               for i in range(15) for name, node in (("a", one), ("b", two))))


def test_racing_writers_leave_clean_chains(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    asyncio.run(_two_writers_racing(tmp_path))
    code, out = run(capsys, tmp_path, "verify", "--quiet", "--json")
    report = json.loads(out)
    assert code == 0 and report["chain"]["chained"] == 60 and report["chain"]["epochs"] == 2  # 2 events each
    code, out = run(capsys, tmp_path, "log", "tail", "--json", "--last", "100")
    assert not any("void" in json.loads(line)["chain"] for line in out.splitlines())  # nothing lost, nothing void
