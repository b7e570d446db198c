"""At most once per interval, on the running event loop's clock: how often a node may repeat a request to its
peers (an ask for confirmations) however many writes make it."""

from __future__ import annotations

import asyncio
import math

__all__ = ["Throttle"]


class Throttle:
    def __init__(self, every: float) -> None:
        self.every = every
        self._last = -math.inf

    def ready(self) -> bool:
        """True, and the interval restarts, when ``every`` seconds have passed since it last said True."""
        now = asyncio.get_running_loop().time()
        if now - self._last < self.every:
            return False
        self._last = now
        return True
