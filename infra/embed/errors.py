"""Errors of the embedder.

    EmbedError
    ├── ModelUnavailableError   the model cannot be loaded (missing package, broken file): recall falls back
    │                           to keyword mode and says so
    ├── EmbedderConfigError     a setting is wrong (``--embedder`` neither local, off nor an http(s) URL; a bad
    │                           number; an unreadable key file): the node refuses to start
    └── EmbedServiceError       the embedding service did not give usable vectors (``retriable`` says whether
        │                       trying again later can help); writes go on without vectors
        ├── EmbedAuthError      it refused the API key (401/403): not retried, fix the key
        └── WrongDimensionError it answered vectors of another dimension than the node's: refused, counted
"""

from __future__ import annotations

__all__ = ["EmbedAuthError", "EmbedError", "EmbedServiceError", "EmbedderConfigError", "ModelUnavailableError",
           "WrongDimensionError"]


class EmbedError(Exception):
    """Any failure of the embedder."""


class ModelUnavailableError(EmbedError):
    """The model could not be loaded; ``str(exc)`` says why (shown in health and recall's meta)."""


class EmbedderConfigError(EmbedError):
    """The embedder's settings are wrong; ``str(exc)`` names the setting and what it accepts."""


class EmbedServiceError(EmbedError):
    """The embedding service failed (unreachable, timed out, 5xx, a malformed answer, the circuit open)."""

    retriable = True


class EmbedAuthError(EmbedServiceError):
    retriable = False


class WrongDimensionError(EmbedServiceError):
    retriable = False

    def __init__(self, expected: int, actual: int, model: str) -> None:
        super().__init__(f"the embedding service answered {actual}-dimension vectors for {model!r}, this node "
                         f"indexes {expected} (set --embed-dim {actual} and run `ai-memory reembed` to switch)")
        self.expected = expected
        self.actual = actual
