"""Timestamps as the wire carries them: RFC 3339, UTC, microseconds, always the same width.

A fixed width matters because the read models compare timestamps as strings, as the original does.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

__all__ = ["canonical_ts", "format_ts", "now_ts", "parse_ts", "shift_ts"]

_FORMAT = "%Y-%m-%dT%H:%M:%S.%f+00:00"
#: What :func:`format_ts` writes (for years from 1000 on, which ``%Y`` writes with four digits).
_CANONICAL = re.compile(r"[1-9][0-9]{3}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}\+00:00")


def format_ts(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    # isoformat writes the same text at half strftime's cost (every write stamps several); strftime only where
    # they differ: isoformat pads a year before 1000 to four digits, strftime does not.
    return moment.isoformat(timespec="microseconds") if moment.year >= 1000 else moment.strftime(_FORMAT)


def now_ts() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def parse_ts(text: str) -> datetime:
    """Parse any RFC 3339 timestamp (``Z`` or an offset; a bare date is taken as midnight UTC).

    Raises:
        ValueError: the text is not a timestamp.
    """
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def canonical_ts(text: str) -> str:
    """``format_ts(parse_ts(text))``; a timestamp already in that form is only checked, not formatted again
    (``strftime`` was most of the cost, and every applied event's stamp asks this).

    Raises:
        ValueError: the text is not a timestamp.
    """
    if _CANONICAL.fullmatch(text):
        datetime.fromisoformat(text)  # a real date and time, or ValueError
        return text
    return format_ts(parse_ts(text))


def shift_ts(ts: str, seconds: float) -> str:
    return format_ts(parse_ts(ts) + timedelta(seconds=seconds))
