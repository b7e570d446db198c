"""Timestamps: format_ts's fast path (isoformat) writes exactly what strftime wrote, at every width of year; and
canonical_ts gives what formatting a parsed timestamp gives, whatever form it came in."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas import canonical_ts, format_ts, now_ts, parse_ts

_STRFTIME = "%Y-%m-%dT%H:%M:%S.%f+00:00"
_ZONES = [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=7))]


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


def _outcome(convert: Callable[[str], str], text: str) -> str:
    try:
        return convert(text)
    except ValueError:
        return "ValueError"


@given(st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 30),
                    timezones=st.sampled_from(_ZONES)))
def test_any_timestamp_comes_out_as_format_ts_writes_it(moment: datetime) -> None:
    for text in (format_ts(moment), moment.isoformat(), moment.astimezone(UTC).isoformat().replace("+00:00", "Z")):
        # format_ts writes a year before 1000 with three digits, which no parser takes back: refused either way.
        assert _outcome(canonical_ts, text) == _outcome(lambda t: format_ts(parse_ts(t)), text)


@pytest.mark.parametrize("text", ["2026-13-01T00:00:00.000000+00:00", "2026-02-30T00:00:00.000000+00:00",
                                  "2026-01-01T24:00:00.000000+00:00", "not a time"])
def test_what_is_no_timestamp_is_refused_in_any_form(text: str) -> None:
    with pytest.raises(ValueError, match=r"."):
        canonical_ts(text)
    with pytest.raises(ValueError, match=r"."):
        format_ts(parse_ts(text))
