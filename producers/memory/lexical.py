"""The words of a recall context that can tell memories apart: its tokens less English function words.

A stop word matches most memories, so in an OR query it lets a note that shares only "when" or "our" with the
question outrank the note that answers it. The list is the common English function-word list of IR toolkits
(pronouns, articles, auxiliaries, prepositions, conjunctions, question words); it names no topic and no corpus.
A token is dropped only when every word FTS5 would read in it is a stop word (``what's`` goes, ``billing-7``
stays), and tokens are deduplicated (repeats only multiply one phrase's weight).
"""

from __future__ import annotations

import re

from projectors import query_tokens

__all__ = ["MAX_TERMS", "STOP_WORDS", "content_terms"]

#: A context of megabytes would be an FTS query of ~10^5 phrases: past this many distinct terms the rest is left out.
MAX_TERMS = 256

_STOP_TEXT = """
a about above after again against all am an and any are aren as at be because been before being below between
both but by can cannot could couldn did didn do does doesn doing don down during each few for from further had
hadn has hasn have haven having he her here hers herself him himself his how i if in into is isn it its itself
just ll me more most mustn my myself no nor not now of off on once only or other ought our ours ourselves out
over own re s same shan she should shouldn so some such t than that the their theirs them themselves then there
these they this those through to too under until up ve very was wasn we were weren what when where which while
who whom why will with won would wouldn you your yours yourself yourselves d m o y ma
"""
STOP_WORDS = frozenset(_STOP_TEXT.split())

_WORD = re.compile(r"\w+")
_EDGES = re.compile(r"^\W+|\W+$")


def content_terms(context: str) -> list[str]:
    """The distinct tokens of ``context`` (as :func:`projectors.query_tokens` cleans them) that carry meaning."""
    out: dict[str, None] = {}
    for token in query_tokens(context):
        term = _EDGES.sub("", token.lower())  # "offsite?" and "offsite" are one term to FTS5
        if any(w not in STOP_WORDS for w in _WORD.findall(term)):
            out.setdefault(term, None)
            if len(out) >= MAX_TERMS:
                break
    return list(out)
