"""What every local server launcher shares: a child process with a log file, stopped, killed or restarted on
demand, and never left behind when the interpreter exits."""

from __future__ import annotations

import atexit
import random
import signal
import socket
import subprocess
import weakref
from pathlib import Path
from types import TracebackType
from typing import Self

__all__ = ["HOST", "ManagedProcess", "Started", "accepts", "free_port", "listen_port", "listen_ports"]

HOST = "127.0.0.1"

_live: weakref.WeakSet[ManagedProcess] = weakref.WeakSet()


def free_port(host: str = HOST) -> int:
    """A TCP port nothing listens on right now (the OS picks it; another process could still take it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default; elsewhere the range is at least this high


def listen_port(host: str = HOST) -> int:
    """A free port for a server that starts a while later, below the OS's ephemeral range.

    Why not :func:`free_port`: its ports come from the ephemeral range, so when many servers start one after
    another, one already running may take a later one's port as the local end of an outgoing connection (a
    route, a gateway), and that server then cannot listen. Ports below the range are never handed out so.
    """
    low = _ephemeral_low()
    for _ in range(200):
        port = random.randrange(10000, max(10001, low))
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
            return port
    return free_port(host)


def listen_ports(count: int, host: str = HOST) -> list[int]:
    """``count`` distinct ports from :func:`listen_port` (two calls can pick the same free port)."""
    ports: list[int] = []
    while len(ports) < count:
        port = listen_port(host)
        if port not in ports:
            ports.append(port)
    return ports


def accepts(port: int, host: str = HOST) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


class Started:
    """``with x:`` starts ``x`` and stops it however the block ends: a server, or a cluster of them."""

    def start(self, *, timeout: float = 10.0) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


class ManagedProcess(Started):
    """Base of the launchers: subclasses set ``_log_path`` and implement ``start``, which calls
    :meth:`_launch`."""

    _process: subprocess.Popen[bytes] | None = None
    _log_path: Path

    def _launch(self, cmd: list[str], *, env: dict[str, str] | None = None) -> None:
        """Start ``cmd`` with its output appended to the log file."""
        self._log_path.parent.mkdir(parents=True, exist_ok=True)
        with self._log_path.open("ab") as log:
            self._process = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                             env=env)
        _live.add(self)

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self._log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, *, timeout: float = 5.0) -> None:
        """Graceful stop (SIGTERM); SIGKILL if it has not exited after ``timeout``."""
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._process = None

    def kill(self) -> None:
        """SIGKILL, as in a crash: nothing is flushed that was not already."""
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            process.kill()
            process.wait()
        self._process = None

    def restart(self, *, timeout: float = 10.0) -> None:
        """Stop if running, then start again (same port, same data where the server keeps any)."""
        self.stop()
        self.start(timeout=timeout)

@atexit.register
def _kill_leftovers() -> None:
    for server in list(_live):
        server.kill()
