"""Ending a child process that serves this one over its stdin (it stops when stdin closes)."""

from __future__ import annotations

import subprocess

__all__ = ["end_child"]


def end_child(child: subprocess.Popen[bytes], *, timeout: float = 5.0) -> None:
    """Close ``child``'s stdin and wait for it to finish; kill it if it has not within ``timeout`` seconds."""
    if child.stdin is not None:
        child.stdin.close()
    try:
        child.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()
    if child.stdout is not None:
        child.stdout.close()
