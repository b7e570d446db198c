"""The HTTP surface (``/api/v1``)."""

from __future__ import annotations

from producers.http.app import MAX_BODY_BYTES, VERSION, create_app

__all__ = ["MAX_BODY_BYTES", "VERSION", "create_app"]
