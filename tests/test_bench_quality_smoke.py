"""The quality benchmark runs end to end at small sizes through a real HTTP node, on the generated and the
public corpus, with every baseline, two passes, and the ranking each method ran named by the node."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.bench_quality import convmem_corpus, evaluate
from bench.qa_corpus import GoldQuestion, chatterbot

REPO = Path(__file__).resolve().parents[1]


def test_the_public_corpus_ships_in_its_wheel_with_gold_answers() -> None:
    corpus = chatterbot()
    assert len(corpus.passages) > 1000 and len(corpus.questions) > 500
    texts = {p.content for p in corpus.passages}
    keys = {p.key for p in corpus.passages}
    assert all(q.evidence <= keys and q.text not in texts for q in corpus.questions)


def test_the_generated_corpus_has_one_memory_per_line_and_the_fact_as_evidence() -> None:
    corpus = convmem_corpus(sessions=40, questions=20)
    by_key = {p.key: p for p in corpus.passages}
    assert len(corpus.questions) == 20 and len(corpus.passages) > 40
    for q in corpus.questions:
        (key,) = q.evidence
        assert by_key[key].content.count(".") <= 1, "a single line, not a whole session"


def test_metrics() -> None:
    qs = [GoldQuestion("q1", frozenset({"a"}), "k"), GoldQuestion("q2", frozenset({"b", "c"}), "k")]
    s = evaluate([["x", "a"], ["b", *"123456", "c"]], qs, [1.0, 3.0])
    assert (s.recall_at_5, s.recall_at_10, s.mrr) == (0.75, 1.0, 0.75) and s.p50_ms == 2.0


@pytest.mark.slow
def test_quick_quality_benchmark(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "bench.bench_quality", "--quick", "--out", str(tmp_path)],
                          cwd=REPO, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-4000:]
    results = json.loads((tmp_path / "bench_quality.json").read_text())
    assert results["meta"]["quick"] is True and set(results["corpora"]) == {"convmem", "chatterbot"}
    for corpus in results["corpora"].values():
        assert set(corpus) >= {"bm25", "dense", "original", "ours"}
        assert corpus["ours"]["ranking"] == ["ours"] and corpus["original"]["ranking"] == ["original"]
        assert {"pass1", "pass2"} <= set(corpus["ours"]) and corpus["ours"]["pass1"]["p95_ms"] > 0
        assert corpus["ours"]["pass1"]["recall_at_10"] > corpus["bm25"]["pass1"]["recall_at_10"]
    assert "| convmem | ours | 1 |" in done.stdout and "second pass" in done.stdout
