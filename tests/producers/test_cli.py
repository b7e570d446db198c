"""The ``ai-memory`` CLI, run in-process on a real data directory."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from producers.cli.main import main
from schemas import load_or_create_node_key
from tests.factories import signed


def run(capsys: pytest.CaptureFixture[str], data: Path, *args: str) -> tuple[int, str, str]:
    code = main([args[0], "--data-dir", str(data), *args[1:]])
    out, err = capsys.readouterr()
    return code, out, err


def test_store_get_list_search_recall(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, tmp_path, "store", "-T", "Deploy steps", "-c", "run the migration then deploy",
                       "--tags", "ops,deploy", "--json", "--agent-id", "ops-bot")
    assert code == 0
    stored = json.loads(out)
    assert stored["metadata"]["agent_id"] == "ops-bot" and stored["tags"] == ["ops", "deploy"]
    code, out, _ = run(capsys, tmp_path, "get", stored["id"][:8], "--json")
    assert code == 0 and json.loads(out)["title"] == "Deploy steps"
    code, out, _ = run(capsys, tmp_path, "list")
    assert code == 0 and "Deploy steps" in out
    code, out, _ = run(capsys, tmp_path, "search", "migration", "--json")
    assert json.loads(out)["count"] == 1
    code, out, _ = run(capsys, tmp_path, "recall", "deploy migration", "--json")
    assert code == 0 and json.loads(out)["memories"][0]["score"] > 0
    code, out, _ = run(capsys, tmp_path, "get", stored["id"], "--json")
    assert json.loads(out)["access_count"] == 1


def test_errors_have_messages_and_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, tmp_path, "get", "nope")
    assert code == 3 and "not found" in err
    code, _, err = run(capsys, tmp_path, "store", "-T", "x", "-c", "y", "--priority", "42")
    assert code == 2 and "priority must be between 1 and 10" in err
    run(capsys, tmp_path, "store", "-T", "dup", "-c", "y")
    code, _, err = run(capsys, tmp_path, "store", "-T", "dup", "-c", "z")
    assert code == 4 and "already exists" in err
    code, _, err = run(capsys, tmp_path, "forget")
    assert code == 2 and "at least one of" in err
    # The original v0.7.0's F11: a forget across every namespace must be confirmed.
    for scope in (["--pattern", "dup"], ["-t", "mid"]):
        code, _, err = run(capsys, tmp_path, "forget", *scope)
        assert code == 2 and "global-scope forget requires --confirm-global" in err
    _, out, _ = run(capsys, tmp_path, "forget", "-p", "dup", "--confirm-global", "--json")
    assert json.loads(out) == {"deleted": 1}


def test_update_promote_delete_forget_stats(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, tmp_path, "store", "-T", "a", "-c", "b", "-t", "short", "--json")
    mid = json.loads(out)["id"]
    assert run(capsys, tmp_path, "update", mid, "--content", "new", "--priority", "8")[0] == 0
    assert run(capsys, tmp_path, "promote", mid)[0] == 0
    _, out, _ = run(capsys, tmp_path, "get", mid, "--json")
    assert json.loads(out)["tier"] == "long" and json.loads(out)["priority"] == 8
    code, out, _ = run(capsys, tmp_path, "stats", "--json")
    assert code == 0 and json.loads(out)["total"] == 1
    assert run(capsys, tmp_path, "delete", mid)[0] == 0
    run(capsys, tmp_path, "store", "-T", "c", "-c", "d", "-n", "tmp")
    _, out, _ = run(capsys, tmp_path, "forget", "-n", "tmp", "--json")
    assert json.loads(out) == {"deleted": 1}


def test_export_import_restamps_author(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, tmp_path / "a", "store", "-T", "shared", "-c", "fact", "--agent-id", "alice")
    export = tmp_path / "export.json"
    assert run(capsys, tmp_path / "a", "export", "-o", str(export))[0] == 0
    code, out, _ = run(capsys, tmp_path / "b", "import", str(export), "--agent-id", "bob", "--json")
    assert code == 0 and json.loads(out)["restamped"] == 1
    _, out, _ = run(capsys, tmp_path / "b", "list", "--json")
    meta = json.loads(out)["memories"][0]["metadata"]
    assert meta == {"agent_id": "bob", "imported_from_agent_id": "alice"}


def test_log_tail_verify_and_rebuild(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AI_MEMORY_EMBEDDER", "off")  # one event per store (no memory.embedded beside it)
    for i in range(3):
        run(capsys, tmp_path, "store", "-T", f"m{i}", "-c", "x")
    code, out, _ = run(capsys, tmp_path, "log", "tail", "--json", "--signatures")
    lines = [json.loads(line) for line in out.splitlines()]
    assert [e["offset"] for e in lines] == [1, 2, 3] and all(e["type"] == "memory.stored" for e in lines)
    assert all(e["signature"] for e in lines)
    code, out, _ = run(capsys, tmp_path, "verify", "--quiet")
    assert code == 0 and "0 bad" in out
    intruder = load_or_create_node_key(tmp_path / "intruder", "intruder")
    forged = signed(intruder, event_type="memory.deleted", payload={"id": "x"})
    db = sqlite3.connect(tmp_path / "log.db")
    db.execute("INSERT INTO events (event_id, body, signature) VALUES (?, ?, ?)",
               (forged.event_id, forged.body, forged.signature))
    db.commit()
    db.close()
    code, out, _ = run(capsys, tmp_path, "verify", "--quiet", "--json")
    report = json.loads(out)
    assert code == 8 and report["checked"] == 4 and report["bad"][0]["offset"] == 4
    code, out, _ = run(capsys, tmp_path, "rebuild", "--quiet", "--json")
    rebuilt = json.loads(out)
    assert code == 0 and rebuilt["position"] == rebuilt["vector_index_position"] == {"ai-memory": 4}
    assert (tmp_path / "hnsw" / "manifest.json").exists() and not (tmp_path / "hnsw.rebuild").exists()
    _, out, _ = run(capsys, tmp_path, "stats", "--json")
    assert json.loads(out)["total"] == 3 and json.loads(out)["projector"]["rejected_events"] == 1


def test_read_model_from_another_log_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, tmp_path, "store", "-T", "x", "-c", "y")
    other = tmp_path / "other-log.db"
    code, _, err = run(capsys, tmp_path, "list", "--log", f"sqlite://{other}")
    assert code == 7 and "rebuild" in err
