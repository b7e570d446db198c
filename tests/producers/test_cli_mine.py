"""``ai-memory mine``: the three export formats in their documented shapes, stored once, through ``main``; and
``auto-consolidate`` (by tag, as the original)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from producers.cli.main import main

CLAUDE = [{"uuid": "c1", "name": "Deploy chat", "created_at": "2026-01-02T03:04:05Z", "chat_messages": [
    {"sender": "human", "text": "when do we deploy?"}, {"sender": "assistant", "text": "Tuesdays."},
    {"sender": "human", "content": [{"type": "text", "text": "and fridays?"}]}]},
    {"uuid": "c2", "name": "short", "chat_messages": [{"sender": "human", "text": "hi"}]}]
CHATGPT = [{"id": "g1", "title": "", "create_time": 1700000000, "mapping": {
    "b": {"message": {"author": {"role": "assistant"}, "content": {"parts": ["Rust is a language."]},
                      "create_time": 1700000002}},
    "a": {"message": {"author": {"role": "user"}, "content": {"parts": ["What is Rust?"]}, "create_time": 1700000001}},
    "s": {"message": {"author": {"role": "system"}, "content": {"parts": ["be nice"]}, "create_time": 1700000000}},
    "r": {"message": None}}}]


@pytest.fixture(autouse=True)
def _no_embedder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AI_MEMORY_EMBEDDER", "off")


def _memories(data: Path, namespace: str, capsys: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    capsys.readouterr()
    assert main(["list", "--data-dir", str(data), "--namespace", namespace, "--json"]) == 0
    memories: list[dict[str, object]] = json.loads(capsys.readouterr().out)["memories"]
    return memories


def test_mine_claude_and_chatgpt(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = str(tmp_path / "node")
    claude = tmp_path / "claude.json"
    claude.write_text(json.dumps(CLAUDE))
    assert main(["mine", str(claude), "--format", "claude", "--data-dir", data, "--dry-run"]) == 0
    dry = json.loads(capsys.readouterr().out)
    assert dry["count"] == 1 and dry["namespace"] == "claude-export"
    assert main(["mine", str(claude), "-f", "claude", "--data-dir", data]) == 0
    assert json.loads(capsys.readouterr().out)["imported"] == 1
    (memory,) = _memories(tmp_path / "node", "claude-export", capsys)
    assert memory["title"] == "Deploy chat" and memory["tags"] == ["mine-claude"]
    assert memory["content"] == "[user]: when do we deploy?\n[assistant]: Tuesdays.\n[user]: and fridays?\n"
    assert main(["mine", str(claude), "-f", "claude", "--data-dir", data]) == 0
    assert json.loads(capsys.readouterr().out)["already_present"] == 1

    gpt = tmp_path / "conversations.json"
    gpt.write_text(json.dumps(CHATGPT))
    assert main(["mine", str(gpt), "-f", "chatgpt", "--min-messages", "2", "--data-dir", data]) == 0
    (chat,) = _memories(tmp_path / "node", "chatgpt-export", capsys)
    assert chat["title"] == "What is Rust?"  # no title: the first user message
    assert chat["content"] == "[user]: What is Rust?\n[assistant]: Rust is a language.\n"


def test_mine_slack_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    channel = tmp_path / "slack" / "general"
    channel.mkdir(parents=True)
    (channel / "2026-01-01.json").write_text(json.dumps([{"user": "U1", "text": "hello", "ts": "1700000000.1"},
                                                         {"user": "U2", "text": ""},
                                                         {"user": "U2", "text": "hi"}]))
    data = str(tmp_path / "node")
    assert main(["mine", str(tmp_path / "slack"), "-f", "slack", "--min-messages", "1", "--data-dir", data]) == 0
    (memory,) = _memories(tmp_path / "node", "slack-export", capsys)
    assert memory["title"] == "#general" and memory["content"] == "[U1]: hello\n[U2]: hi\n"
    assert main(["mine", str(channel / "2026-01-01.json"), "-f", "slack", "--data-dir", data]) == 2
    assert "must be a directory" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text("{\n")
    assert main(["mine", str(bad), "-f", "claude", "--data-dir", data]) == 2
    assert "invalid JSON on line 1" in capsys.readouterr().err


def test_auto_consolidate_by_tag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = str(tmp_path / "node")
    for i in range(4):
        tags = ["deploy"] if i < 3 else []
        assert main(["store", "--data-dir", data, "-T", f"note {i}", "-c", "x" * 300, "-n", "ops",
                     "--tags", ",".join(tags), "--agent-id", "op"]) == 0
    capsys.readouterr()
    assert main(["auto-consolidate", "--data-dir", data, "--dry-run", "--min-count", "3"]) == 0
    (group,) = json.loads(capsys.readouterr().out)["groups"]
    assert (group["namespace"], group["tag"], group["count"]) == ("ops", "deploy", 3)
    assert sorted(group["titles"]) == ["note 0", "note 1", "note 2"]
    assert main(["auto-consolidate", "--data-dir", data, "--namespace", "ops"]) == 0
    assert json.loads(capsys.readouterr().out) == {"consolidated": 3}
    titles = {str(m["title"]): m for m in _memories(tmp_path / "node", "ops", capsys)}
    merged = titles["Consolidated: deploy (3 memories)"]
    assert set(titles) == {"note 3", "Consolidated: deploy (3 memories)"}
    assert "- note 0: " + "x" * 200 + "\n" in str(merged["content"]) + "\n"
