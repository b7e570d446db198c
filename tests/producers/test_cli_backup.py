"""``ai-memory backup`` / ``restore`` through ``main``: a snapshot restores to the same memories, and a restore
on a log that went on replays only the tail after the snapshot's read-model position. And the forensic bundle:
exported, verified on its own, and refused when its digest or keys were tampered with."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from nacl.signing import SigningKey

from producers.cli.main import main


@pytest.fixture(autouse=True)
def _no_embedder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AI_MEMORY_EMBEDDER", "off")


def _store(data: Path, title: str) -> None:
    assert main(["store", "--data-dir", str(data), "-T", title, "-c", f"about {title}", "--agent-id", "op"]) == 0


def _titles(data: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> list[str]:
    capsys.readouterr()
    assert main(["list", "--data-dir", str(data), "--json", *extra]) == 0
    return sorted(m["title"] for m in json.loads(capsys.readouterr().out)["memories"])


def test_backup_restore_and_tail_replay(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    node, snap = tmp_path / "node", tmp_path / "snap"
    for title in ("a", "b", "c"):
        _store(node, title)
    capsys.readouterr()
    assert main(["backup", "--data-dir", str(node), "--to", str(snap)]) == 0
    manifest = json.loads(capsys.readouterr().out)
    assert manifest["files"][:3] == ["readmodel.db", "deliveries.db", "log.db"] and manifest["log_included"]
    for title in ("d", "e"):
        _store(node, title)

    restored = tmp_path / "restored"
    capsys.readouterr()
    assert main(["restore", "--data-dir", str(restored), "--from", str(snap)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["replayed"] == 0 and report["position_now"] == report["position_at_backup"]
    assert _titles(restored, capsys) == ["a", "b", "c"]
    assert (restored / "node_id").read_text() == (node / "node_id").read_text()  # the same node

    # On the original log (as a node on a shared NATS or Kafka log would be), only the tail is replayed.
    on_log = tmp_path / "on-log"
    log = f"sqlite://{node / 'log.db'}"
    capsys.readouterr()
    assert main(["restore", "--data-dir", str(on_log), "--from", str(snap), "--log", log]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["replayed"] == 2  # d and e (one memory.stored each: no embedder)
    assert _titles(on_log, capsys, "--log", log) == ["a", "b", "c", "d", "e"]


def test_refusals(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["backup", "--data-dir", str(tmp_path / "none"), "--to", str(tmp_path / "b")]) == 2
    assert "not a node's data directory" in capsys.readouterr().err
    _store(tmp_path / "n", "x")
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "f").write_text("x")
    assert main(["backup", "--data-dir", str(tmp_path / "n"), "--to", str(busy)]) == 2
    assert main(["restore", "--data-dir", str(tmp_path / "r"), "--from", str(busy)]) == 2
    assert "is not a backup" in capsys.readouterr().err


def test_forensic_bundle(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    node, bundle = tmp_path / "node", tmp_path / "bundle"
    for title in ("a", "b"):
        _store(node, title)
    capsys.readouterr()
    assert main(["export-forensic-bundle", "--data-dir", str(node), "--out", str(bundle)]) == 0
    manifest = json.loads(capsys.readouterr().out)
    assert manifest["events"] == 2 and len(manifest["keys"]) == 1
    assert main(["verify-forensic-bundle", str(bundle)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] and report["checked"] == 2 and report["digest_matches"]

    stated = json.loads((bundle / "manifest.json").read_text())
    (bundle / "manifest.json").write_text(json.dumps({**stated, "sha256": "0" * 64}))
    assert main(["verify-forensic-bundle", str(bundle)]) == 8
    assert json.loads(capsys.readouterr().out)["digest_matches"] is False
    (bundle / "manifest.json").write_text(json.dumps(stated))
    (key,) = (bundle / "keys").glob("*.pub")
    key.write_bytes(bytes(SigningKey.generate().verify_key))  # someone else's key under the node's name
    assert main(["verify-forensic-bundle", str(bundle)]) == 8
    assert len(json.loads(capsys.readouterr().out)["bad"]) == 2
    assert main(["verify-forensic-bundle", str(tmp_path / "nothing")]) == 2
