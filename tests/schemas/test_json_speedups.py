"""The fast JSON paths (orjson) give exactly what the stdlib gave, including where orjson alone would not."""

from __future__ import annotations

import json

import pytest

from projectors.rules import json_column
from schemas.encoding import decode_body
from schemas.errors import EncodingError

BODIES = [
    b'{"a":1,"b":[1.5,"\xc3\xa9",null,true],"c":{"d":-0.0}}',
    b'{"big":123456789012345678901234567890}',  # orjson would read a float
    b'{"edge":18446744073709551615,"neg":-9223372036854775808}',
    b'{"nan":NaN,"inf":Infinity}',  # the stdlib accepts these; so must we
    b'{"surrogate":"\\ud800"}',  # orjson refuses a lone surrogate
    b'{"dup":1,"dup":2}',
    b'{"id":"0123456789012345678901234"}',  # a long digit run inside a string
]


@pytest.mark.parametrize("body", BODIES)
def test_decode_body_equals_the_stdlib(body: bytes) -> None:
    got, want = decode_body(body), json.loads(body)
    assert repr(got) == repr(want)  # repr tells 1e29 from 10**29 and keeps NaN comparable


@pytest.mark.parametrize("body", [b"[1]", b"{bad", b"\xff\xfe", b""])
def test_decode_body_refuses_what_is_not_an_object(body: bytes) -> None:
    with pytest.raises(EncodingError):
        decode_body(body)


@pytest.mark.parametrize("value", [
    {"b": 1, "a": [1.5, "é", None], "c": {"z": 0, "y": "x"}},
    {"huge": 2**70},  # beyond orjson: the stdlib writes it
    ["tag-1", "tag-2"],
    {},
])
def test_json_column_is_compact_sorted_and_reads_back(value: object) -> None:
    text = json_column(value)
    assert json.loads(text) == value
    assert text == json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
