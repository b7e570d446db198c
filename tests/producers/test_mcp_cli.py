"""The CLI side of MCP: the ``mcp`` verb's options, and the original's global ``--db`` found in agents' configs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from producers.cli.main import build_parser, main


def test_original_db_flag_selects_a_data_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "claude" / "ai-memory.db"
    db.parent.mkdir()
    assert main(["--db", str(db), "store", "-T", "t", "-c", "c", "--json"]) == 0
    capsys.readouterr()
    assert (tmp_path / "claude" / "ai-memory" / "log.db").exists() and not db.exists()
    assert main(["stats", "--json", "--data-dir", str(tmp_path / "claude" / "ai-memory")]) == 0
    assert json.loads(capsys.readouterr().out)["total"] == 1


def test_mcp_verb_options(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    args = build_parser().parse_args(["--db", "x.db", "mcp", "--tier", "semantic", "--profile", "graph,archive"])
    assert args.verb == "mcp" and args.profile == "graph,archive" and args.db == "x.db"
    assert main(["mcp", "--data-dir", str(tmp_path), "--profile", "core,nope"]) == 2
    assert "unknown profile or family 'nope'" in capsys.readouterr().err


def test_profile_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from producers.cli.mcp_verb import resolve_profile

    monkeypatch.setenv("AI_MEMORY_PROFILE", "power")
    assert resolve_profile(None).families == ("core", "power")
    assert resolve_profile("full").label == "full"
