"""The event loop a verb runs on: uvloop for the long-running server, asyncio's own for everything else.

``serve`` spends much of its CPU in the event loop itself (socket writes to NATS and to HTTP clients, callbacks,
tasks); uvloop (libuv) does that work in C. Measured with bench_fleet's load on one node: see docs/cluster.md, "Fleet
figures". One-shot verbs gain nothing and keep the standard loop. ``AI_MEMORY_EVENT_LOOP=asyncio`` turns uvloop
off; without the package the standard loop runs.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["run"]

T = TypeVar("T")


def _fast_loop() -> Callable[[], asyncio.AbstractEventLoop] | None:
    if os.environ.get("AI_MEMORY_EVENT_LOOP", "").strip().lower() == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def run(main: Coroutine[Any, Any, T], *, fast: bool = False) -> T:
    """``asyncio.run(main)``, on uvloop when ``fast`` and available."""
    with asyncio.Runner(loop_factory=_fast_loop() if fast else None) as runner:
        return runner.run(main)
