"""The ``ai-memory serve`` processes running on this machine, so that a CLI verb can tell its user when it works
on another data directory than the server they are looking at.

Each server writes ``<runtime dir>/servers/<pid>.json`` ({pid, data_dir, url}) while it runs; a record whose
process is gone is ignored and removed. The runtime dir is ``$XDG_RUNTIME_DIR/ai-memory`` or, without it,
``<tmp>/ai-memory-<uid>``: per user, never shared.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

__all__ = ["RunningServer", "registered", "running_servers"]


@dataclass(frozen=True)
class RunningServer:
    pid: int
    data_dir: str
    url: str


def _servers_dir() -> Path:
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    base = Path(runtime) / "ai-memory" if runtime else Path(tempfile.gettempdir()) / f"ai-memory-{os.getuid()}"
    return base / "servers"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextmanager
def registered(data_dir: Path, url: str) -> Iterator[None]:
    """Announce this process as a server of ``data_dir`` at ``url`` while the block runs."""
    folder = _servers_dir()
    path = folder / f"{os.getpid()}.json"
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        path.write_text(json.dumps(asdict(RunningServer(os.getpid(), str(data_dir.resolve()), url))))
        written = True
    except OSError:
        written = False  # a read-only tmp costs only the CLI's warning, never the server
    try:
        yield
    finally:
        if written:
            path.unlink(missing_ok=True)


def running_servers() -> list[RunningServer]:
    found: list[RunningServer] = []
    folder = _servers_dir()
    if not folder.is_dir():
        return found
    for path in folder.glob("*.json"):
        try:
            server = RunningServer(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            continue
        if _alive(server.pid):
            found.append(server)
        else:
            path.unlink(missing_ok=True)
    return sorted(found, key=lambda s: s.pid)
