"""The operator verbs: ``doctor``, ``install`` (into a temporary HOME), ``completions`` and
``verify-reflection-chain``, run through ``main``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from nacl.signing import SigningKey

from producers.cli.main import main
from producers.cli.operator import man_page


@pytest.fixture(autouse=True)
def _quiet(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AI_MEMORY_EMBEDDER", "off")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    # Servers other tests started register here; this test's doctor must see none of them.
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))


def test_doctor_says_what_to_fix(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = str(tmp_path / "node")
    assert main(["doctor", "--data-dir", data]) == 1
    assert "does not exist" in capsys.readouterr().out
    assert main(["store", "--data-dir", data, "-T", "t", "-c", "c", "--agent-id", "op"]) == 0
    capsys.readouterr()
    assert main(["doctor", "--data-dir", data, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is True and [c["name"] for c in report["checks"]] == [
        "data directory", "event log", "read model", "signatures", "embedder", "servers"]


def test_install_merges_into_existing_configs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cursor = tmp_path / "home" / ".cursor" / "mcp.json"
    cursor.parent.mkdir(parents=True)
    cursor.write_text(json.dumps({"mcpServers": {"other": {"command": "x"}}, "theme": "dark"}))
    data = str(tmp_path / "node")
    assert main(["install", "--data-dir", data, "--client", "cursor", "--dry-run"]) == 0
    assert json.loads(capsys.readouterr().out)["results"][0]["written"] is False
    assert "memory" not in json.loads(cursor.read_text())["mcpServers"]
    assert main(["install", "--data-dir", data, "--client", "cursor", "--profile", "full"]) == 0
    written = json.loads(cursor.read_text())
    assert written["theme"] == "dark" and written["mcpServers"]["other"] == {"command": "x"}
    assert written["mcpServers"]["memory"]["args"] == ["mcp", "--data-dir", data, "--profile", "full"]
    cursor.write_text("{not json")
    assert main(["install", "--data-dir", data, "--client", "cursor"]) == 2
    assert "is not valid JSON" in capsys.readouterr().err


def test_completions(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["completions", "bash"]) == 0
    script = capsys.readouterr().out
    assert "complete -F _ai_memory ai-memory" in script and " kg-query " in script and " doctor " in script
    assert main(["completions", "fish"]) == 0
    assert "complete -c ai-memory -n __fish_use_subcommand -a store" in capsys.readouterr().out


def test_man_page(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["man", "--data-dir", str(tmp_path)]) == 0
    page = capsys.readouterr().out
    assert page.startswith(".TH AI-MEMORY 1 ") and ".SH VERBS" in page and ".SH EXIT STATUS" in page
    for verb in ("store", "resolve", "curator", "man"):
        assert f".TP\n\\fB{verb}\\fR\n" in page
    # Help text that roff would read as a request or an escape is made literal.
    raw = man_page({"x": ".starts with a dot, has a \\ backslash"}, "v")
    assert "\\&.starts with a dot, has a \\e backslash" in raw


def _reflect_chain(data: str, agent: str, capsys: pytest.CaptureFixture[str]) -> str:
    ids = []
    for title in (f"obs-{agent}", f"obs2-{agent}"):
        assert main(["store", "--data-dir", data, "-T", title, "-c", "c", "--agent-id", agent, "--json"]) == 0
        ids.append(json.loads(capsys.readouterr().out)["id"])
    assert main(["reflect", "--data-dir", data, "--agent-id", agent, json.dumps(
        {"source_ids": [ids[0]], "title": f"r1-{agent}", "content": "c"})]) == 0
    first = json.loads(capsys.readouterr().out)["id"]
    assert main(["reflect", "--data-dir", data, "--agent-id", agent, json.dumps(
        {"source_ids": [first, ids[1]], "title": f"r2-{agent}", "content": "c"})]) == 0
    top: str = json.loads(capsys.readouterr().out)["id"]
    return top


def test_verify_reflection_chain(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = str(tmp_path / "node")
    unsigned = _reflect_chain(data, "plain", capsys)
    assert main(["verify-reflection-chain", "--data-dir", data, unsigned]) == 8
    report = json.loads(capsys.readouterr().out)
    assert report["link_count"] == 3 and not report["verified"]  # r2 -> r1, r2 -> obs2, r1 -> obs
    key = SigningKey.generate()
    keys = tmp_path / "node" / "keys"
    (keys / "signer.priv").write_bytes(bytes(key))
    (keys / "signer.pub").write_bytes(bytes(key.verify_key))
    signed = _reflect_chain(data, "signer", capsys)
    assert main(["verify-reflection-chain", "--data-dir", data, signed]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["verified"] and {link["signed_by"] for link in report["links"]} == {"signer"}
    assert main(["verify-reflection-chain", "--data-dir", data, "no-such-id"]) == 3
