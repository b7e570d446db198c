"""The ``archive`` and ``consolidate`` verbs, run in-process on a real data directory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.producers.test_cli import run


def _store(capsys: pytest.CaptureFixture[str], data: Path, title: str) -> str:
    code, out, _ = run(capsys, data, "store", "-T", title, "-c", f"about {title}", "--json")
    assert code == 0
    memory_id: str = json.loads(out)["id"]
    return memory_id


def test_consolidate_then_archive_verbs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = _store(capsys, tmp_path, "a"), _store(capsys, tmp_path, "b")
    code, out, _ = run(capsys, tmp_path, "consolidate", f"{a},{b}", "-T", "ab", "-s", "a and b", "--json")
    assert code == 0 and json.loads(out)["consolidated"] == 2
    code, out, _ = run(capsys, tmp_path, "archive", "list", "--json")
    assert code == 0 and {r["id"] for r in json.loads(out)["archived"]} == {a, b}
    code, out, _ = run(capsys, tmp_path, "archive", "stats")
    assert code == 0 and out.strip() == "archived: 2   by namespace: global=2"
    code, out, _ = run(capsys, tmp_path, "archive", "restore", a)
    assert code == 0 and out.strip() == f"restored {a}"
    code, _, err = run(capsys, tmp_path, "archive", "restore", a)
    assert code == 3 and "not found in archive" in err
    code, out, _ = run(capsys, tmp_path, "archive", "purge", "--older-than-days", "0", "--json")
    assert code == 0 and json.loads(out) == {"purged": 1}
    code, _, err = run(capsys, tmp_path, "consolidate", a, "-T", "t", "-s", "s")
    assert code == 2 and "need at least 2 memory IDs" in err
