"""The approval HMAC's time window at its exact bounds, with a fixed clock (the HTTP test cannot: its requests
reach the node a moment after they are signed)."""

from __future__ import annotations

import pytest

from producers.errors import AuthError
from producers.http.approval_auth import (
    APPROVAL_MAX_AGE_SECS,
    APPROVAL_MAX_SKEW_SECS,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    ApprovalAuth,
    approval_signature,
)

NOW = 1_800_000_000.0
BODY = b'{"decision": "approve"}'


def _headers(ts: int, secret: str = "s3cret") -> dict[str, str]:
    return {TIMESTAMP_HEADER: str(ts), SIGNATURE_HEADER: approval_signature(secret, str(ts), "p1", "carol", BODY)}


@pytest.mark.parametrize("offset", [-APPROVAL_MAX_AGE_SECS, 0, APPROVAL_MAX_SKEW_SECS])
def test_inside_the_window_is_accepted(offset: int) -> None:
    ApprovalAuth("s3cret").check(_headers(int(NOW) + offset), "p1", "carol", BODY, now=NOW)


@pytest.mark.parametrize("offset", [-APPROVAL_MAX_AGE_SECS - 1, APPROVAL_MAX_SKEW_SECS + 1])
def test_outside_the_window_is_refused(offset: int) -> None:
    with pytest.raises(AuthError):
        ApprovalAuth("s3cret").check(_headers(int(NOW) + offset), "p1", "carol", BODY, now=NOW)


def test_a_signature_is_accepted_once_and_a_wrong_secret_never() -> None:
    auth = ApprovalAuth("s3cret")
    auth.check(_headers(int(NOW)), "p1", "carol", BODY, now=NOW)
    for headers in (_headers(int(NOW)), _headers(int(NOW), secret="wrong")):
        with pytest.raises(AuthError):
            auth.check(headers, "p1", "carol", BODY, now=NOW)
