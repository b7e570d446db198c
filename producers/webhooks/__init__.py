"""Webhook delivery: signing, the SSRF guard, settings, and the sender behind the delivery projector."""

from __future__ import annotations

from producers.webhooks.config import WebhookConfig
from producers.webhooks.delivery import WebhookDelivery
from producers.webhooks.signing import (
    CORRELATION_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    hmac_key,
    signature,
    verify_signature,
)
from producers.webhooks.ssrf import SsrfError, check_url, resolve

__all__ = [
    "CORRELATION_HEADER",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "SsrfError",
    "WebhookConfig",
    "WebhookDelivery",
    "check_url",
    "hmac_key",
    "resolve",
    "signature",
    "verify_signature",
]
