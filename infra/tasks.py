"""Stopping background tasks for sure.

On Python 3.11 a client library that waits with ``asyncio.wait_for`` (nats-py does) can swallow a
cancellation when its inner wait completes at the same moment; a loop that retries on errors then runs on and
``await task`` never returns. :func:`stop_task` cancels until the task is done, within a bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from typing import Any

__all__ = ["finish_within", "stop_task"]

log = logging.getLogger("ai_memory.tasks")


async def stop_task(task: asyncio.Task[Any] | None, *, give_up_after: float = 10.0) -> None:
    """Cancel ``task`` (again and again if need be) until it has finished, or ``give_up_after`` seconds passed
    (then it is left behind with a warning rather than hanging the caller). Its outcome is consumed."""
    if task is None:
        return
    loop = asyncio.get_running_loop()
    deadline = loop.time() + give_up_after
    while not task.done() and loop.time() < deadline:
        task.cancel()
        await asyncio.wait({task}, timeout=0.5)
    if not task.done():
        log.warning("background task %s did not stop within %.0fs; leaving it", task.get_name(), give_up_after)
        return
    with contextlib.suppress(asyncio.CancelledError, Exception):
        task.result()


async def finish_within(awaitable: Coroutine[Any, Any, Any], seconds: float, *, name: str) -> bool:
    """Await ``awaitable`` for at most ``seconds``, then stop it (see :func:`stop_task`); True when it finished
    on its own. For clean-ups that a peer can stall forever (closing a connection whose TLS handshake failed
    waits for a ``connection_lost`` that never comes): the caller moves on either way. Its error is consumed."""
    task = asyncio.create_task(awaitable, name=name)
    await asyncio.wait({task}, timeout=seconds)
    finished = task.done()
    if not finished:
        log.warning("%s did not finish within %.0fs; moving on", name, seconds)
    await stop_task(task, give_up_after=5.0)
    return finished
