"""The README's Quickstart, every snippet as written and in order, on a fresh node: the curl lines against a real
``ai-memory serve``, the original's Python client, then the CLI block on the server's data directory. A snippet
that fails here fails for a newcomer."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.servers import ServerProcess

README = Path(__file__).resolve().parents[2] / "README.md"


def quickstart_blocks() -> list[tuple[str, str]]:
    """The (language, code) of each fenced block between "## Quickstart" and the next "## " heading."""
    text = README.read_text()
    section = text.split("\n## Quickstart\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```(\w+)\n(.*?)```", section, flags=re.S)


def commands(code: str) -> list[str]:
    """Shell commands: continuation lines joined, comments and blank lines dropped."""
    joined = re.sub(r"\\\n\s*", " ", code)
    return [line.strip() for line in joined.splitlines() if line.strip() and not line.lstrip().startswith("#")]


@pytest.mark.slow
def test_the_quickstart_as_written(tmp_path: Path) -> None:
    blocks = quickstart_blocks()
    assert [lang for lang, _ in blocks] == ["bash", "python", "bash"]
    env = {**os.environ, "AI_MEMORY_HOME": str(tmp_path / "node"), "XDG_RUNTIME_DIR": str(tmp_path)}
    server = ServerProcess(tmp_path / "node", env=env).start(timeout=60)
    address = server.url.removeprefix("http://")
    try:
        for line in commands(blocks[0][1]):
            assert line.startswith("curl ")
            line = line.replace("localhost:9077", address)
            done = subprocess.run(f"{line} -w '\\n%{{http_code}}'", shell=True, capture_output=True,
                                  text=True, timeout=30, check=False)
            body, _, status = done.stdout.rpartition("\n")
            assert done.returncode == 0 and status.startswith("2"), (line, done.stdout, done.stderr)
            if "/recall" in line or "/search" in line:  # a newcomer's reads find the memory just stored
                assert "Deploy order" in body, (line, body)

        script = blocks[1][1].replace("http://127.0.0.1:9077", server.url)
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                              check=False, env=env)
        assert done.returncode == 0, done.stderr
        assert "Rollback plan" in done.stdout and "Deploy order" in done.stdout

        cli = str(Path(sys.executable).parent / "ai-memory")
        for line in commands(blocks[2][1]):
            if "stop the server first" in line:
                server.stop()
            argv = [w.strip('"') for w in re.findall(r'"[^"]*"|\S+', line.split("  #", 1)[0])]
            assert argv[0] == "ai-memory"
            if "-f" in argv:  # follows the log until interrupted: it must still be running after a moment
                with pytest.raises(subprocess.TimeoutExpired):
                    subprocess.run([cli, *argv[1:]], capture_output=True, timeout=3, env=env, check=False)
                continue
            done = subprocess.run([cli, *argv[1:]], capture_output=True, text=True, timeout=120, env=env,
                                  check=False)
            assert done.returncode == 0, (line, done.stderr)
            assert "warning" not in done.stderr, done.stderr
    finally:
        server.stop()
