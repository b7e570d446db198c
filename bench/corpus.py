"""A deterministic synthetic corpus of agent memories, and recall queries that match it.

Content words follow Zipf's law (exponent 1) over one ranked vocabulary, as natural language does: English
function words hold the top ranks (about 45% of tokens, as in English text), then real technical words,
then pronounceable made-up words for the long tail. So FTS5 sees realistic posting lists: function words
occur in nearly every memory, the commonest topic words in roughly one memory in ten, most words in very
few. Titles and tags are topic words only (the same Zipf tail); titles are distinct; content is 200-600
characters. Recall queries are 2-3 distinct topic words of one stored memory, so each query matches.

Example::

    corpus = Corpus(seed=7)
    drafts = corpus.drafts(0, 100)
    queries = corpus.queries(drafts, 10)
"""

from __future__ import annotations

import itertools
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Corpus", "Draft"]

_REAL_TEXT = """
deploy service database migration schema index query cache latency timeout retry queue worker cluster
node replica leader follower partition offset stream consumer producer event log snapshot backup restore
token secret credential certificate rotation policy access role permission audit user session login
oauth endpoint request response header payload client server proxy gateway route handler middleware
config setting flag feature release version branch merge commit review pipeline build test fixture mock
coverage benchmark profile memory thread process socket buffer channel signal lock mutex deadlock race
container image registry volume mount network dns firewall port host region zone bucket object storage
disk quota limit budget metric alert dashboard trace span sampler exporter collector agent namespace tier
priority ranking score recall search keyword vector embedding model prompt context window summary note
decision incident outage postmortem runbook oncall escalation ticket customer invoice payment refund
order cart checkout inventory shipment warehouse report export import parser encoder decoder format
json yaml protobuf avro csv parquet column table row transaction commit rollback isolation vacuum
compaction retention ttl expiry archive purge scheduler cron job task batch backfill reindex shard
"""

_FUNCTION_TEXT = """
the a an and or but of to in on for with by from at as is are was were be been it this that these those
we they should must can will when after before because if then so not only also
"""
_REAL_WORDS = tuple(dict.fromkeys(_REAL_TEXT.split()))
_FUNCTION_WORDS = tuple(_FUNCTION_TEXT.split())

_ONSETS = ("b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "kr", "st", "tr", "pl")
_VOWELS = ("a", "e", "i", "o", "u", "ai", "ou")
_CODAS = ("", "", "n", "r", "s", "l", "x")
_NAMESPACES = ("global", "projects/atlas", "projects/atlas/api", "projects/borealis", "team/platform",
               "team/payments", "agents/coder", "agents/reviewer")
_TIERS = ("mid",) * 7 + ("long",) * 2 + ("short",)
_WORD = re.compile(r"[a-z]+")


def _made_up_words(rng: random.Random, count: int, taken: set[str]) -> list[str]:
    words: list[str] = []
    while len(words) < count:
        syllables = rng.randint(2, 4)
        word = "".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) for _ in range(syllables)) + rng.choice(_CODAS)
        if word not in taken:
            taken.add(word)
            words.append(word)
    return words


def _topic_vocabulary(rng: random.Random, size: int) -> list[str]:
    real = list(_REAL_WORDS)
    rng.shuffle(real)
    taken = set(real) | set(_FUNCTION_WORDS)
    return real + _made_up_words(rng, size - len(real), taken)


def _zipf_cum(first_rank: int, count: int) -> list[float]:
    """Cumulative Zipf weights (exponent 1) of ranks ``first_rank`` .. ``first_rank + count - 1``."""
    return list(itertools.accumulate(1.0 / rank for rank in range(first_rank, first_rank + count)))


@dataclass(frozen=True, slots=True)
class Draft:
    """One memory to store, as a client would send it."""

    title: str
    content: str
    tags: list[str]
    namespace: str
    tier: str
    priority: int
    confidence: float

    def body(self) -> dict[str, Any]:
        """The ``POST /api/v1/memories`` body (also fed to ``parse_create`` in-process)."""
        return {"title": self.title, "content": self.content, "tags": self.tags, "namespace": self.namespace,
                "tier": self.tier, "priority": self.priority, "confidence": self.confidence, "source": "api"}

    def topic_words(self) -> list[str]:
        """Distinct non-function words of the title and content, in order of appearance."""
        words = _WORD.findall(f"{self.title} {self.content}".lower())
        return [w for w in dict.fromkeys(words) if w not in _FUNCTION_SET]


_FUNCTION_SET = frozenset(_FUNCTION_WORDS)


@dataclass
class Corpus:
    """Memory ``i`` is the same for a given seed whatever else was generated, and every title is distinct."""

    seed: int = 7
    topic_words: int = 20_000
    _words: list[str] = field(init=False, repr=False)
    _cum: list[float] = field(init=False, repr=False)
    _topics: list[str] = field(init=False, repr=False)
    _topic_cum: list[float] = field(init=False, repr=False)
    _titles: set[tuple[str, str]] = field(init=False, repr=False, default_factory=set)

    def __post_init__(self) -> None:
        rng = random.Random(self.seed)
        function_words = list(_FUNCTION_WORDS)
        rng.shuffle(function_words)
        self._topics = _topic_vocabulary(rng, self.topic_words)
        self._words = function_words + self._topics
        self._cum = _zipf_cum(1, len(self._words))
        self._topic_cum = _zipf_cum(len(function_words) + 1, len(self._topics))

    def _topic(self, rng: random.Random, k: int) -> list[str]:
        return rng.choices(self._topics, cum_weights=self._topic_cum, k=k)

    def _sentence(self, rng: random.Random) -> str:
        words = rng.choices(self._words, cum_weights=self._cum, k=rng.randint(7, 14))
        return " ".join(words).capitalize() + "."

    def _content(self, rng: random.Random) -> str:
        target = rng.randint(200, 600)
        text = ""
        while len(text) < target:
            text = f"{text} {self._sentence(rng)}".strip()
        return text[:target].rstrip() if len(text) > 600 else text

    def _title(self, rng: random.Random, namespace: str) -> str:
        while True:
            title = " ".join(self._topic(rng, rng.randint(3, 6))).capitalize()
            if (title, namespace) not in self._titles:
                self._titles.add((title, namespace))
                return title

    def draft(self, index: int) -> Draft:
        rng = random.Random(f"{self.seed}:{index}")
        namespace = rng.choice(_NAMESPACES)
        return Draft(title=self._title(rng, namespace), content=self._content(rng),
                     tags=sorted(set(self._topic(rng, rng.randint(0, 3)))), namespace=namespace,
                     tier=rng.choice(_TIERS), priority=rng.randint(1, 9), confidence=round(rng.uniform(0.5, 1), 2))

    def drafts(self, start: int, stop: int) -> list[Draft]:
        """Memories ``start`` .. ``stop - 1``. Generate each index once per corpus (titles are reserved)."""
        return [self.draft(i) for i in range(start, stop)]

    def queries(self, drafts: Sequence[Draft], count: int, *, seed: int = 0) -> list[str]:
        """``count`` recall contexts of 2-3 topic words, each taken from one stored memory (so it matches)."""
        rng = random.Random(f"{self.seed}:queries:{seed}")
        out: list[str] = []
        while len(out) < count:
            words = rng.choice(drafts).topic_words()
            if len(words) >= 2:
                out.append(" ".join(rng.sample(words, min(len(words), rng.randint(2, 3)))))
        return out
