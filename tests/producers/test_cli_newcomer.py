"""What a newcomer meets first on the command line: a data directory that remembers its log, errors that say what
to do (never a destructive cure for a missing option), a warning when the CLI and a running server use different
data directories, a one-line refusal of a busy port, and ``--version``."""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import ServerProcess


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "producers.cli.main", *args], capture_output=True, text=True,
                          timeout=60, check=False,
                          env={**os.environ, "AI_MEMORY_EMBEDDER": "off", **(env or {})})


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[dict[str, str]]:
    """A private runtime dir: the servers this test starts are the only ones the CLI sees."""
    folder = tmp_path / "runtime"
    folder.mkdir()
    yield {"XDG_RUNTIME_DIR": str(folder)}


def test_a_data_dir_remembers_its_log(tmp_path: Path) -> None:
    data, other_log = tmp_path / "node", tmp_path / "elsewhere" / "log.db"
    other_log.parent.mkdir()
    stored = run("store", "--data-dir", str(data), "--log", f"sqlite:///{other_log}", "-T", "Kept", "-c", "body")
    assert stored.returncode == 0, stored.stderr
    # No --log: the directory's record names the log, so the memory is there and nothing is rebuilt.
    listed = run("list", "--data-dir", str(data))
    assert listed.returncode == 0, listed.stderr
    assert "Kept" in listed.stdout
    assert not (data / "log.db").exists(), "an empty embedded log was opened beside the recorded one"


def test_another_log_is_refused_without_recommending_a_rebuild_first(tmp_path: Path) -> None:
    data = tmp_path / "node"
    assert run("store", "--data-dir", str(data), "-T", "Kept", "-c", "body").returncode == 0
    stray = tmp_path / "stray.db"
    refused = run("list", "--data-dir", str(data), "--log", f"sqlite:///{stray}")
    assert refused.returncode == 7
    message = refused.stderr
    assert "pass --log" in message and "omit --log" in message
    # Any mention of rebuild says that it discards the read model; the non-destructive cures come first.
    assert message.index("pass --log") < message.index("rebuild")
    assert "discards" in message
    assert "Kept" in run("list", "--data-dir", str(data)).stdout


def test_a_data_dir_that_is_a_file_is_one_clear_line(tmp_path: Path) -> None:
    path = tmp_path / "afile"
    path.write_text("not a directory")
    done = run("list", "--data-dir", str(path))
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0
    assert "is a file, not a directory" in done.stderr and "Traceback" not in done.stderr


def test_the_cli_says_when_it_creates_a_data_directory(tmp_path: Path) -> None:
    done = run("list", "--data-dir", str(tmp_path / "fresh"))
    assert done.returncode == 0
    assert f"created the data directory {tmp_path / 'fresh'}" in done.stderr
    again = run("list", "--data-dir", str(tmp_path / "fresh"))
    assert "created" not in again.stderr


def test_the_cli_warns_when_a_server_runs_on_another_data_directory(
        tmp_path: Path, runtime: dict[str, str]) -> None:
    server = ServerProcess(tmp_path / "served", env={"AI_MEMORY_EMBEDDER": "off", **runtime}).start()
    try:
        elsewhere = run("list", "--data-dir", str(tmp_path / "mine"), env=runtime)
        assert "warning" in elsewhere.stderr and str((tmp_path / "served").resolve()) in elsewhere.stderr
        same = run("list", "--data-dir", str(tmp_path / "served"), env=runtime)
        assert "warning" not in same.stderr
    finally:
        server.stop()
    after = run("list", "--data-dir", str(tmp_path / "mine"), env=runtime)
    assert "warning" not in after.stderr  # the stopped server removed its record


def test_a_busy_port_is_one_line_and_exit_6(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run("serve", "--data-dir", str(tmp_path / "node"), "--port", str(port))
    assert done.returncode == 6
    assert "Traceback" not in done.stderr
    assert f"cannot serve on 127.0.0.1:{port}" in done.stderr and "--port" in done.stderr
    assert "serving" not in done.stderr


def test_version() -> None:
    done = run("--version")
    assert done.returncode == 0 and done.stdout.startswith("ai-memory ")


def test_every_option_of_every_verb_is_described() -> None:
    from producers.cli.main import build_parser

    def undescribed(parser: argparse.ArgumentParser, path: str) -> Iterator[str]:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    yield from undescribed(sub, f"{path} {name}")
            elif action.help is None:
                yield f"{path}: {action.dest}"

    assert list(undescribed(build_parser(), "ai-memory")) == []


def test_update_takes_the_short_options_of_store(tmp_path: Path) -> None:
    data = str(tmp_path / "node")
    stored = run("store", "--data-dir", data, "-T", "Old", "-c", "body", "--json")
    memory_id = json.loads(stored.stdout)["id"]
    updated = run("update", memory_id, "--data-dir", data, "-T", "New", "-p", "7")
    assert updated.returncode == 0, updated.stderr
    shown = json.loads(run("get", memory_id, "--data-dir", data, "--json").stdout)
    assert (shown.get("memory", shown)["title"], shown.get("memory", shown)["priority"]) == ("New", 7)
