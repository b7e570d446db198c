"""Errors of the embedder.

    EmbedError
    └── ModelUnavailableError   the model cannot be loaded (missing package, broken file): recall falls back
                                to keyword mode and says so
"""

from __future__ import annotations

__all__ = ["EmbedError", "ModelUnavailableError"]


class EmbedError(Exception):
    """Any failure of the embedder."""


class ModelUnavailableError(EmbedError):
    """The model could not be loaded; ``str(exc)`` says why (shown in health and recall's meta)."""
