"""A circuit breaker for the embedding service: after ``threshold`` failures in a row the circuit opens and
calls fail at once (writes are stored without vectors, recall runs in keyword mode) instead of each waiting out
a timeout; after ``cooldown`` seconds one call is let through to probe the service (half-open), and a success
closes the circuit again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

__all__ = ["CircuitBreaker"]


class CircuitBreaker:
    """Thread-safe: the embedder is called from worker threads."""

    def __init__(
        self, *, threshold: int = 3, cooldown: float = 2.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if threshold < 1 or cooldown <= 0:
            msg = f"circuit breaker needs threshold >= 1 and cooldown > 0 (got {threshold}, {cooldown})"
            raise ValueError(msg)
        self.threshold = threshold
        self.cooldown = cooldown
        self._clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._opened_at: float | None = None
        self._probing = False
        self.opened_total = 0

    @property
    def state(self) -> str:
        """``closed`` (calls go through), ``open`` (calls refused) or ``half-open`` (one probe may go)."""
        with self._lock:
            return self._state()

    def _state(self) -> str:
        if self._opened_at is None:
            return "closed"
        return "half-open" if self._clock() - self._opened_at >= self.cooldown else "open"

    def retry_in(self) -> float:
        """Seconds until the next probe may go (0 when closed or half-open)."""
        with self._lock:
            if self._opened_at is None:
                return 0.0
            return max(0.0, self.cooldown - (self._clock() - self._opened_at))

    def allow(self) -> bool:
        """Whether a call may go now; in half-open state only one caller gets True until it reports back."""
        with self._lock:
            state = self._state()
            if state == "closed":
                return True
            if state == "half-open" and not self._probing:
                self._probing = True
                return True
            return False

    def succeeded(self) -> None:
        with self._lock:
            self._failures = 0
            self._opened_at = None
            self._probing = False

    def failed(self) -> None:
        with self._lock:
            self._failures += 1
            if self._probing or (self._opened_at is None and self._failures >= self.threshold):
                self.opened_total += self._opened_at is None
                self._opened_at = self._clock()  # a failed probe restarts the cooldown
            self._probing = False
