"""The operator's token: ``AI_MEMORY_ADMIN_TOKEN`` in the server's environment, sent as
``X-AI-Memory-Admin-Token``. Admin routes and routes that touch the node's files require it; a few reads show
more to the operator (every pending action). Without a configured token, nobody is the operator over HTTP (the
CLI verbs work locally instead)."""

from __future__ import annotations

import hmac
import os

from starlette.requests import Request

from producers.errors import CommandError

__all__ = ["ADMIN_TOKEN_ENV", "ADMIN_TOKEN_HEADER", "AdminForbiddenError", "is_operator", "require_operator"]

ADMIN_TOKEN_ENV = "AI_MEMORY_ADMIN_TOKEN"
ADMIN_TOKEN_HEADER = "X-AI-Memory-Admin-Token"


class AdminForbiddenError(CommandError):
    """403, exit 5: an admin route without the operator token (or with admin routes disabled)."""

    status = 403
    exit_code = 5


def require_operator(request: Request, needs: str = "") -> None:
    """Refuse (403) a request without the operator's token; ``needs`` says why the route wants it.

    Raises:
        AdminForbiddenError: no token configured, or a missing or wrong one sent.
    """
    token = os.environ.get(ADMIN_TOKEN_ENV) or ""
    if not token:
        raise AdminForbiddenError(needs or f"admin routes are disabled: start the server with {ADMIN_TOKEN_ENV} set")
    supplied = request.headers.get(ADMIN_TOKEN_HEADER, "")
    if not hmac.compare_digest(supplied.encode(), token.encode()):
        raise AdminForbiddenError(needs or f"missing or invalid {ADMIN_TOKEN_HEADER}")


def is_operator(request: Request) -> bool:
    """Whether the request carries the operator's token; a wrong one is refused, not ignored.

    Raises:
        AdminForbiddenError: a token sent that is not the operator's (or none is configured).
    """
    if ADMIN_TOKEN_HEADER not in request.headers:
        return False
    require_operator(request)
    return True
