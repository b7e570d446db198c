"""``ai-memory link`` and ``ai-memory kg`` in-process on a real data directory, and links in ``export``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.producers.test_cli import run


def test_link_kg_and_export(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ids = []
    for title in ("a", "b", "c"):
        code, out, _ = run(capsys, tmp_path, "store", "-T", title, "-c", f"about {title}", "--json")
        ids.append(json.loads(out)["id"])
    a, b, c = ids
    code, out, _ = run(capsys, tmp_path, "link", a, b, "--json")
    assert code == 0 and json.loads(out)["attest_level"] == "unsigned"
    first = json.loads(out)["offset"]
    code, out, _ = run(capsys, tmp_path, "link", b, c, "-r", "supersedes")
    assert code == 0 and out.startswith(f"linked: {b} --[supersedes]--> {c}")
    code, out, _ = run(capsys, tmp_path, "kg", a, "--depth", "2", "--json")
    assert json.loads(out)["paths"] == [f"{a}->{b}", f"{a}->{b}->{c}"]
    code, out, _ = run(capsys, tmp_path, "kg", a, "--depth", "2", "--as-of", str(first), "--json")
    assert json.loads(out)["paths"] == [f"{a}->{b}"]
    code, out, _ = run(capsys, tmp_path, "kg", a, "--depth", "2")
    assert code == 0 and "  --[supersedes]--> " in out
    code, out, err = run(capsys, tmp_path, "link", a, a)
    assert code == 2 and "cannot link a memory to itself" in err
    code, out, err = run(capsys, tmp_path, "kg", a, "--depth", "9")
    assert code == 2 and "exceeds supported depth=5" in err
    code, out, _ = run(capsys, tmp_path, "export")
    assert [(lk["source_id"], lk["target_id"]) for lk in json.loads(out)["links"]] == [(a, b), (b, c)]


def test_resolve_a_contradiction(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The original's ``resolve WINNER LOSER``: a supersedes link, the loser demoted, the winner touched."""
    ids = []
    for title in ("deploy on fridays", "never deploy on fridays"):
        code, out, _ = run(capsys, tmp_path, "store", "-T", title, "-c", title, "--priority", "7", "--json")
        ids.append(json.loads(out)["id"])
    loser, winner = ids
    code, out, _ = run(capsys, tmp_path, "resolve", winner[:8], loser, "--json")
    assert code == 0 and json.loads(out) == {"resolved": True, "winner": winner[:8], "loser": loser}
    code, out, _ = run(capsys, tmp_path, "kg", winner, "--json")
    assert [(m["target_id"], m["relation"]) for m in json.loads(out)["memories"]] == [(loser, "supersedes")]
    _, out, _ = run(capsys, tmp_path, "get", loser, "--json")
    assert json.loads(out)["priority"] == 1 and json.loads(out)["confidence"] == pytest.approx(0.1)
    _, out, _ = run(capsys, tmp_path, "get", winner, "--json")
    assert json.loads(out)["priority"] == 7 and json.loads(out)["access_count"] == 1
    code, out, _ = run(capsys, tmp_path, "resolve", winner, loser)
    assert code == 0 and out.strip() == f"resolved: {winner} supersedes {loser}"
    code, _, err = run(capsys, tmp_path, "resolve", winner, "nope")
    assert code == 3 and "not found" in err
