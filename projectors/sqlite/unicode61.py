"""Tokens exactly as FTS5's default tokenizer reads them (unicode61, remove_diacritics=1), for the lexical index.

ASCII text is read here: FTS5's ASCII table makes letters and digits token characters and everything else a
separator, and folds A-Z to a-z. Any other text is handed to a private in-memory FTS5 table of the same SQLite
library and read back through ``fts5vocab``: SQLite's own Unicode tables (categories, case folding, diacritics)
decide, so there is no copy of them here to drift from the real index.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Sequence
from typing import Any

__all__ = ["Unicode61"]

_ASCII_TOKEN = re.compile(r"[a-z0-9]+")
#: Query terms whose tokens are remembered: a recall's terms repeat across recalls.
_TERM_CACHE = 4096

Document = Sequence[Any]  # the values of one row's indexed columns


class Unicode61:
    """Token lists of documents and query terms, as the ``memories_fts`` index holds and parses them."""

    def __init__(self) -> None:
        self._db = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
        self._db.executescript("CREATE VIRTUAL TABLE doc USING fts5(title, content, tags);"
                               "CREATE VIRTUAL TABLE doc_terms USING fts5vocab(doc, 'instance');")
        self._lock = threading.Lock()
        self._terms: dict[str, tuple[str, ...]] = {}

    def documents(self, docs: Sequence[Document]) -> list[list[str]]:
        """The tokens of each document (every column, repeats kept, in no particular order)."""
        out: list[list[str]] = []
        other: dict[int, Document] = {}
        for i, doc in enumerate(docs):
            if all(isinstance(v, str) and v.isascii() for v in doc):
                out.append(_ASCII_TOKEN.findall(" ".join(doc).lower()))
            else:
                out.append([])
                other[i] = doc
        if other:
            for i, tokens in self._by_fts5(other).items():
                out[i] = tokens
        return out

    def term(self, text: str) -> str | None:
        """The one token of a query phrase ``"text"``, or None when FTS5 reads none or several in it (a phrase
        like ``e-mail``, which the index cannot match: its tokens must be adjacent)."""
        tokens = self._terms.get(text)
        if tokens is None:
            tokens = tuple(_ASCII_TOKEN.findall(text.lower()) if text.isascii()
                           else self._by_fts5({0: (text, "", "")}).get(0, []))
            if len(self._terms) >= _TERM_CACHE:
                self._terms.clear()
            self._terms[text] = tokens
        return tokens[0] if len(tokens) == 1 else None

    def _by_fts5(self, docs: dict[int, Document]) -> dict[int, list[str]]:
        """Tokenize through FTS5 itself: insert, read the instances back, roll the insert back."""
        out: dict[int, list[str]] = {i: [] for i in docs}
        with self._lock:
            self._db.execute("BEGIN")
            try:
                self._db.executemany("INSERT INTO doc (rowid, title, content, tags) VALUES (?, ?, ?, ?)",
                                     [(i + 1, *doc) for i, doc in docs.items()])
                for term, row in self._db.execute("SELECT term, doc FROM doc_terms"):
                    out[int(row) - 1].append(str(term))
            finally:
                self._db.execute("ROLLBACK")
        return out

    def close(self) -> None:
        self._db.close()
