"""canonical_ts: the same as formatting a parsed timestamp, whatever form it came in."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas import canonical_ts, format_ts, parse_ts


def _outcome(convert: Callable[[str], str], text: str) -> str:
    try:
        return convert(text)
    except ValueError:
        return "ValueError"


_ZONES = [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=7))]


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
