"""The public corpus of the quality benchmark: the English question/answer conversations that ship inside the
``chatterbot-corpus`` wheel (BSD licence; PyPI, nothing fetched at run time).

One memory per distinct answer turn; one question per distinct turn that some turn answers, its gold passages
every stored answer that follows it in any conversation. A prompt that is itself stored (the middle turn of a
three-turn conversation) is not asked: its own text would be the nearest memory and no method could rank the
gold first. Nothing here is tuned: the benchmark fits on the generated corpus and reports this one.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from importlib import resources

import yaml  # type: ignore[import-untyped]  # no stubs in the venv; only safe_load is used

__all__ = ["Corpus", "GoldQuestion", "Passage", "chatterbot"]


@dataclass(frozen=True, slots=True)
class Passage:
    key: str
    title: str
    content: str


@dataclass(frozen=True, slots=True)
class GoldQuestion:
    text: str
    evidence: frozenset[str]
    kind: str


@dataclass(frozen=True, slots=True)
class Corpus:
    name: str
    passages: list[Passage]
    questions: list[GoldQuestion]


def _pairs() -> list[tuple[str, str, str]]:
    """(category, prompt, answer) for every consecutive pair of turns in the English conversations."""
    root = resources.files("chatterbot_corpus") / "data" / "english"
    out: list[tuple[str, str, str]] = []
    for entry in sorted(root.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".yml"):
            continue
        doc = yaml.safe_load(entry.read_text(encoding="utf-8")) or {}
        for conversation in doc.get("conversations") or []:
            turns = [str(t).strip() for t in conversation if t is not None and str(t).strip()]
            out.extend((entry.name.removesuffix(".yml"), a, b) for a, b in itertools.pairwise(turns))
    return out


def chatterbot() -> Corpus:
    pairs = _pairs()
    keys: dict[str, str] = {}
    for _, _, answer in pairs:
        keys.setdefault(answer, f"a{len(keys)}")
    gold: dict[str, tuple[str, set[str]]] = {}
    for category, prompt, answer in pairs:
        if prompt not in keys:
            gold.setdefault(prompt, (category, set()))[1].add(keys[answer])
    passages = [Passage(key, f"Turn {key[1:]:0>5}", text) for text, key in keys.items()]
    questions = [GoldQuestion(text, frozenset(evidence), category) for text, (category, evidence) in gold.items()]
    return Corpus("chatterbot", passages, questions)
