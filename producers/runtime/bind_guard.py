"""Whether ``serve`` may listen where it was asked to without an API key (the original v0.7.0's S5-C1 and #1458).

Without an API key every route answers any caller that reaches the listener. As the original: a loopback bind
starts with a warning (a reverse proxy or a forwarded port can still expose it), a non-loopback bind is refused,
and ``AI_MEMORY_REQUIRE_API_KEY=1`` (or ``true``) refuses every keyless bind. Beyond the original, a listener
that requires client certificates from an allowlist (``--mtls-allowlist``) is not keyless in this sense: the
certificates authenticate the callers, so it may bind anywhere.
"""

from __future__ import annotations

import os

from producers.errors import ValidationError

__all__ = ["STRICT_ENV", "check_bind"]

STRICT_ENV = "AI_MEMORY_REQUIRE_API_KEY"
_LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost", "0:0:0:0:0:0:0:1", "[::1]"})


def _strict() -> bool:
    return os.environ.get(STRICT_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def check_bind(host: str, *, api_key: bool, client_certificates: bool) -> str | None:
    """None when the bind needs no remark, a warning to log, or ValidationError (exit 2) when it is refused."""
    if api_key:
        return None
    if _strict():
        raise ValidationError(f"refusing to start without an API key: {STRICT_ENV} is set, which mandates an API "
                              f"key on every bind (requested host {host!r}); pass --api-key (or AI_MEMORY_API_KEY), "
                              f"or unset {STRICT_ENV}")
    if client_certificates:
        return None
    if host not in _LOOPBACK:
        raise ValidationError(f"refusing to bind to non-loopback address {host!r} without an API key: every route "
                              "would answer any caller that can reach it; pass --api-key (or AI_MEMORY_API_KEY), "
                              "require client certificates (--mtls-allowlist), or bind to 127.0.0.1 / ::1 / "
                              "localhost")
    return (f"API key NOT configured: bound to loopback {host!r}, every route accepts any caller that reaches this "
            f"listener (a reverse proxy or a forwarded port exposes it off-host); pass --api-key, or set "
            f"{STRICT_ENV}=1 to require one")
