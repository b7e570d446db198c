"""Timestamps: the fast path (isoformat) writes exactly what strftime wrote, at every width of year."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

from schemas.clock import format_ts, now_ts

_STRFTIME = "%Y-%m-%dT%H:%M:%S.%f+00:00"


def test_format_ts_is_the_strftime_text() -> None:
    plus5 = timezone(timedelta(hours=5))
    for moment in (datetime(2026, 12, 6, 19, 30, 14, 123456, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC),
                   datetime(1000, 1, 1, tzinfo=UTC), datetime(999, 12, 31, 23, 59, 59, 1, tzinfo=UTC),
                   datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), datetime(2026, 3, 1, 2, 0, tzinfo=plus5),
                   datetime(2026, 3, 1, 2, 0)):
        utc = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)
        assert format_ts(moment) == utc.strftime(_STRFTIME)
    assert format_ts(datetime(2026, 3, 1, 2, 0, tzinfo=plus5)) == "2026-02-28T21:00:00.000000+00:00"


def test_now_ts_has_the_fixed_width() -> None:
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00", now_ts())
