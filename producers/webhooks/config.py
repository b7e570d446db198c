"""Webhook delivery settings: the original's retry ladder and ACK timeout, and the operator's SSRF switch."""

from __future__ import annotations

import os
from dataclasses import dataclass

__all__ = ["WebhookConfig"]

ALLOW_PRIVATE_ENV = "AI_MEMORY_WEBHOOK_ALLOW_PRIVATE"


@dataclass(frozen=True)
class WebhookConfig:
    #: Waits before the 2nd, 3rd and 4th attempt; after the last failure the delivery is dead-lettered.
    retry_backoffs: tuple[float, ...] = (0.2, 1.0, 5.0)
    #: Per attempt: the receiver must answer ``{"status":"ack","correlation_id":…}`` within this.
    ack_timeout: float = 5.0
    #: Allow webhook URLs on private / link-local networks (refused by default).
    allow_private: bool = False
    #: Deliveries in flight at once.
    concurrency: int = 16

    @classmethod
    def from_env(cls) -> WebhookConfig:
        return cls(allow_private=os.environ.get(ALLOW_PRIVATE_ENV, "").lower() in ("1", "true", "yes"))
