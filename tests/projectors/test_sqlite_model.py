from __future__ import annotations

import contextlib
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.log import LogRecord
from infra.log.embedded import EmbeddedLog
from producers.input.commands import parse_create
from producers.runtime.node import Node
from projectors import ReadModel, ReadModelError, SQLiteReadModel
from projectors.sqlite.schema import SCHEMA_VERSION
from schemas import SignedEvent, load_or_create_node_key, now_ts
from tests.contract.read_model_contract import ReadModelContract
from tests.contract.tracking_contract import TrackingContract
from tests.factories import signed


class TestSQLiteTracking(TrackingContract):
    @pytest.fixture
    def model(self, tmp_path: Path) -> Iterator[SQLiteReadModel]:
        m = SQLiteReadModel(tmp_path / "rm.db")
        yield m
        m.close()

    def count_memories(self, model: ReadModel) -> int:
        assert isinstance(model, SQLiteReadModel)
        return len(model.queries.all_memories())


def _raw_append(path: Path, event_id: str, body: bytes, signature: bytes) -> None:
    """Write straight into the log file, as an attacker with disk access would."""
    db = sqlite3.connect(path)
    db.execute("INSERT INTO events (event_id, body, signature) VALUES (?, ?, ?)", (event_id, body, signature))
    db.commit()
    db.close()


async def test_forged_and_tampered_events_are_refused_and_reported(node: Node, tmp_path: Path) -> None:
    good = await node.service.store(parse_create({"title": "real", "content": "x"}, now=now_ts()), agent_id="a")
    intruder = load_or_create_node_key(tmp_path / "intruder", "intruder")
    forged = signed(intruder, event_type="memory.deleted", payload={"id": good.memory.id})
    log = node.log
    assert isinstance(log, EmbeddedLog)
    _raw_append(log.path, forged.event_id, forged.body, forged.signature)
    genuine = signed(node.key, event_type="memory.deleted", payload={"id": good.memory.id})
    tampered = genuine.body.replace(good.memory.id.encode(), b"another-id-0000")
    _raw_append(log.path, genuine.event_id, tampered, genuine.signature)
    await node.service.sync()
    assert (await node.service.resolve(good.memory.id)).title == "real", "a forged delete must not apply"
    assert node.model.rejected_count() == 2
    reasons = [r["reason"] for r in node.model.rejected_events()]
    assert any("not trusted" in str(r) for r in reasons) and any("does not verify" in str(r) for r in reasons)


async def test_invalid_payload_is_rejected_not_fatal(node: Node) -> None:
    bad = signed(node.key, event_type="memory.stored", payload={"memory": {"id": "x"}})
    await node.log.append([bad])
    ok = await node.service.store(parse_create({"title": "after", "content": "x"}, now=now_ts()), agent_id="a")
    assert ok.memory.title == "after"
    assert node.model.rejected_count() == 1


def test_signed_event_from_log_parts_keeps_bytes(tmp_path: Path) -> None:
    key = load_or_create_node_key(tmp_path, "k")
    event = signed(key)
    again = SignedEvent.from_parts(event.body, event.signature)
    assert LogRecord("p", 1, again).event.body == event.body


class TestSQLiteReadModel(ReadModelContract):
    @pytest.fixture
    def model(self, tmp_path: Path) -> Iterator[SQLiteReadModel]:
        m = SQLiteReadModel(tmp_path / "rm.db")
        yield m
        m.close()


async def test_title_index_follows_updates_deletes_and_bulk_rebuild(node: Node, tmp_path: Path) -> None:
    from producers.input.commands import parse_update
    from projectors.rebuild import rebuild_sqlite

    a = await node.service.store(parse_create({"title": "alpha beta", "content": "x", "namespace": "n"},
                                              now=now_ts()), agent_id="a")
    b = await node.service.store(parse_create({"title": "beta gamma", "content": "y", "namespace": "n"},
                                              now=now_ts()), agent_id="a")
    q = node.model.queries
    assert set(q.similar_titles("beta", "n")) == {a.memory.id, b.memory.id}
    assert q.similar_titles("beta", "elsewhere") == []
    await node.service.update(a.memory.id, parse_update({"title": "delta"}), agent_id="a")
    assert q.similar_titles("alpha", "n") == [] and q.similar_titles("delta", "n") == [a.memory.id]
    await node.service.delete(b.memory.id, agent_id="a")
    assert q.similar_titles("gamma", "n") == []
    await rebuild_sqlite(node.log, node.keyring, tmp_path / "rebuilt.db")
    rebuilt = SQLiteReadModel(tmp_path / "rebuilt.db")
    assert rebuilt.queries.similar_titles("delta", "n") == [a.memory.id]
    assert rebuilt.queries.similar_titles("gamma", "n") == []
    rebuilt.close()


_HOLD_OPEN = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("SELECT count(*) FROM model_meta").fetchone()
print("open", flush=True)
sys.stdin.read()
"""


def _meta(path: Path) -> dict[str, str]:
    with contextlib.closing(sqlite3.connect(path)) as db:
        return dict(db.execute("SELECT key, value FROM model_meta").fetchall())


def test_a_model_of_another_schema_is_rebuilt_only_once_no_other_process_has_it_open(tmp_path: Path) -> None:
    # An upgraded node (or CLI) finds a file of another schema version. Deleting it while a server of the old
    # version, or another node sharing it, has it open would leave them writing to a file nobody else sees.
    path = tmp_path / "readmodel.db"
    SQLiteReadModel(path).close()
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("UPDATE model_meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION - 1),))
        db.execute("INSERT INTO model_meta (key, value) VALUES ('marker', 'old data')")
        db.commit()
    holder = subprocess.Popen([sys.executable, "-c", _HOLD_OPEN, str(path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        with pytest.raises(ReadModelError, match="another process has it open"):
            SQLiteReadModel(path)
        assert _meta(path)["marker"] == "old data"
    finally:
        holder.communicate("", timeout=10)
    SQLiteReadModel(path).close()  # nobody else has it open: recreated in the new schema, empty
    meta = _meta(path)
    assert meta["schema_version"] == str(SCHEMA_VERSION) and "marker" not in meta
