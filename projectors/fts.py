"""Turn free text into a safe FTS5 query, as the original does (pure functions).

Invisible format characters are removed, control characters (NUL among them: SQLite would end the query string
there, and Postgres refuses it) separate tokens as spaces do, the operators AND/OR/NOT/NEAR are dropped, the characters
``" * ^ { } ( ) : | +`` are stripped from each token, and each token is phrase-quoted. Search joins tokens
with a space (FTS5's implicit AND); recall joins them with OR.
"""

from __future__ import annotations

import re

__all__ = ["EMPTY_QUERY", "fts_query", "query_tokens"]

EMPTY_QUERY = '"_empty_"'
_INVISIBLE = re.compile(
    "[\u200b-\u200d\ufeff\u00ad\u034f\u061c\u180e\u2060-\u2064\ufe00-\ufe0f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_CONTROL = re.compile("[\x00-\x1f\x7f]")
_STRIP = str.maketrans("", "", '"*^{}():|+')
_OPERATORS = {"AND", "OR", "NOT", "NEAR"}


def query_tokens(text: str) -> list[str]:
    tokens = []
    for raw in _CONTROL.sub(" ", _INVISIBLE.sub("", text)).split():
        if raw.upper() in _OPERATORS:
            continue
        token = raw.translate(_STRIP)
        if token:
            tokens.append(token)
    return tokens


def fts_query(text: str, *, use_or: bool) -> str:
    tokens = query_tokens(text)
    if not tokens:
        return EMPTY_QUERY
    return (" OR " if use_or else " ").join(f'"{t}"' for t in tokens)
