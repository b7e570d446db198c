"""Recall quality through the HTTP recall of a running node: evidence recall@5, recall@10 and MRR.

    python -m bench.bench_quality            # both corpora, every method, two passes
    python -m bench.bench_quality --quick    # small sizes (the smoke test)
    python -m bench.bench_quality --fit      # fit our fusion on the generated corpus only (both shapes)

Corpora (one memory per passage):
* ``convmem``: the generated conversational memory (``bench/convmem.py``), one memory per dialogue line; the
  evidence of a question is the line that states the fact. Our fusion is fitted on this generator (``--fit``:
  this shape and its whole-session shape).
* ``chatterbot``: the public question/answer conversations shipped in the ``chatterbot-corpus`` wheel
  (``bench/qa_corpus.py``): one memory per answer turn, the question is the turn it answers. Reported only:
  nothing is fitted on it.

Methods, in the same run, each on its own copy of the same ingested node (a recall touches what it returns, so
one method's touches must not steer the next):
* ``bm25``: plain SQLite FTS5 bm25 over the same texts (every token OR-ed, no other term): the keyword baseline;
* ``dense``: ``mode: semantic`` with the original's ranking: cosine alone;
* ``original``: ``ranking: original``: the original's blend of its composite keyword score and the cosine;
* ``ours``: the request as a client sends it, no ranking or mode named (the node's defaults).
Each node method answers every question twice, touches on: the second pass shows whether recall degrades with
use. Latency is the client-side time of each ``POST /api/v1/recall`` (query embedding included).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

import httpx

from bench.convmem import generate
from bench.phases import progress
from bench.qa_corpus import Corpus, GoldQuestion, Passage, chatterbot
from bench.server import running_server
from bench.stats import percentile
from producers.input.commands import parse_recall
from producers.memory.recall import Candidates, dense_share, fuse
from producers.runtime.node import Node, NodeConfig
from projectors import fts_query
from schemas import Memory, now_ts

__all__ = ["Scores", "convmem_corpus", "evaluate", "main"]

NAMESPACE = "bench"
LIMIT = 10
BULK = 250  # small enough that a bulk of long sessions embeds within the request timeout on a loaded machine
#: Node methods: name, extra recall parameters, passes.
METHODS: tuple[tuple[str, dict[str, str]], ...] = (
    ("dense", {"mode": "semantic", "ranking": "original"}),
    ("original", {"ranking": "original"}),
    ("ours", {}),
)
FIT_GRID = tuple(round(0.05 * i, 2) for i in range(21))


@dataclass(frozen=True, slots=True)
class Scores:
    recall_at_5: float
    recall_at_10: float
    mrr: float
    p50_ms: float | None = None
    p95_ms: float | None = None


def evaluate(ranked: Sequence[Sequence[str]], questions: Sequence[GoldQuestion],
             latencies: Sequence[float] = ()) -> Scores:
    """Mean evidence recall@5 and @10 (the share of a question's gold passages in the top k) and MRR (1/rank of
    the first gold passage, 0 past the list)."""
    r5 = r10 = rr = 0.0
    for keys, q in zip(ranked, questions, strict=True):
        r5 += len(q.evidence & set(keys[:5])) / len(q.evidence)
        r10 += len(q.evidence & set(keys[:10])) / len(q.evidence)
        rr += next((1.0 / (i + 1) for i, k in enumerate(keys) if k in q.evidence), 0.0)
    n = max(1, len(questions))
    lat = sorted(latencies)
    return Scores(round(r5 / n, 4), round(r10 / n, 4), round(rr / n, 4),
                  round(percentile(lat, 50), 2) if lat else None, round(percentile(lat, 95), 2) if lat else None)


def convmem_corpus(*, sessions: int, questions: int) -> Corpus:
    data = generate(memories=sessions, questions=questions, per_turn=True)
    return Corpus("convmem", [Passage(i.key, i.title, i.content) for i in data.items],
                  [GoldQuestion(q.text, frozenset({q.evidence}), q.kind) for q in data.questions])


#: The agent that stores the corpus and asks the questions: an anonymous HTTP reader sees no private memories (the
#: original v0.7.0's rule, our default), so the benchmark reads as the agent that wrote, as an agent would.
AGENT = {"X-Agent-Id": "bench-agent"}


def _ingest(corpus: Corpus, base_url: str) -> None:
    with httpx.Client(base_url=base_url, timeout=600, headers=AGENT) as client:
        batches = [corpus.passages[i:i + BULK] for i in range(0, len(corpus.passages), BULK)]
        for batch in progress(batches, f"{corpus.name}: store"):
            body = [{"title": p.title, "content": p.content, "namespace": NAMESPACE, "tier": "long"} for p in batch]
            r = client.post("/api/v1/memories/bulk", json=body)
            if r.status_code >= 300 or r.json().get("errors"):
                raise RuntimeError(f"bulk store failed: {r.status_code} {r.text[:500]}")


def _recall_pass(client: httpx.Client, corpus: Corpus, params: dict[str, str], desc: str
                 ) -> tuple[list[list[str]], list[float], set[str]]:
    """Every question once: the passage keys of each answer, each request's latency, the rankings named."""
    by_title = {p.title: p.key for p in corpus.passages}
    ranked, latencies, rankings = [], [], set()
    for q in progress(corpus.questions, desc):
        start = time.perf_counter()
        r = client.post("/api/v1/recall", json={"context": q.text, "limit": LIMIT, "namespace": NAMESPACE, **params})
        latencies.append((time.perf_counter() - start) * 1000)
        if r.status_code != 200:
            raise RuntimeError(f"recall failed: {r.status_code} {r.text[:500]}")
        body = r.json()
        rankings.add(str(body.get("meta", {}).get("ranking")))
        ranked.append([by_title[m["title"]] for m in body["memories"] if m["title"] in by_title])
    return ranked, latencies, rankings


def _bm25(corpus: Corpus) -> Scores:
    """Plain FTS5 bm25 over title and content, every token of the question OR-ed."""
    db = sqlite3.connect(":memory:")
    db.execute("CREATE VIRTUAL TABLE docs USING fts5(key UNINDEXED, title, content)")
    db.executemany("INSERT INTO docs VALUES (?, ?, ?)", [(p.key, p.title, p.content) for p in corpus.passages])
    ranked, latencies = [], []
    for q in corpus.questions:
        start = time.perf_counter()
        rows = db.execute("SELECT key FROM docs WHERE docs MATCH ? ORDER BY rank LIMIT ?",
                          (fts_query(q.text, use_or=True), LIMIT)).fetchall()
        latencies.append((time.perf_counter() - start) * 1000)
        ranked.append([r[0] for r in rows])
    db.close()
    return evaluate(ranked, corpus.questions, latencies)


def run_corpus(corpus: Corpus, work: Path, *, passes: int) -> dict[str, Any]:
    """Every method on ``corpus``: {method: {"pass1": Scores, "pass2": ...}}."""
    # A read model remembers the path of its log, so each copy is served from the path it was built at.
    node, pristine = work / f"{corpus.name}-node", work / f"{corpus.name}-pristine"
    with running_server(node) as url:
        _ingest(corpus, url)
    shutil.copytree(node, pristine)
    out: dict[str, Any] = {"memories": len(corpus.passages), "questions": len(corpus.questions),
                           "bm25": {"pass1": asdict(_bm25(corpus))}}
    for name, params in METHODS:
        shutil.rmtree(node)
        shutil.copytree(pristine, node)
        with running_server(node) as url, httpx.Client(base_url=url, timeout=60, headers=AGENT) as client:
            out[name] = {}
            for n in range(1, passes + 1):
                ranked, latencies, rankings = _recall_pass(client, corpus, params, f"{corpus.name}: {name} #{n}")
                out[name][f"pass{n}"] = asdict(evaluate(ranked, corpus.questions, latencies))
                out[name]["ranking"] = sorted(rankings)
    return out


def _top(c: Candidates, share: Callable[[Candidates], float], n: int = LIMIT) -> list[Memory]:
    fused = fuse(c, dense_weight=share(c))
    return [m for m, _ in sorted(fused, key=lambda x: (-x[1], x[0].id))[:n]]


async def _candidates(corpus: Corpus, work: Path) -> tuple[list[Candidates], dict[str, str]]:
    """The candidates our pipeline collects for each question of ``corpus`` (in process, no touches), and the
    passage key of each title."""
    base = work / f"{corpus.name}-fit"
    with running_server(base) as url:
        _ingest(corpus, url)
    node = await Node.open(NodeConfig(data_dir=base))
    try:
        await node.start()
        pipeline, semantic = node.service.recaller, node.semantic
        found = []
        for q in progress(corpus.questions, f"fit: {corpus.name} candidates"):
            flt = node.service.memory_filter(parse_recall({"context": q.text, "namespace": NAMESPACE}).filters,
                                             now=now_ts())
            vectors = await semantic.embed([q.text])
            assert vectors is not None
            lexical = pipeline.lexical(q.text, flt, limit=LIMIT, ranking="ours", hybrid=True)
            found.append(pipeline.candidates_with_vector(vectors[0], lexical, flt, limit=LIMIT, ranking="ours"))
        return found, {p.title: p.key for p in corpus.passages}
    finally:
        await node.close()


async def _fit(work: Path, *, sessions: int, questions: int) -> dict[str, Any]:
    """Our dense share, fitted on the generated corpus in both shapes (one memory per line; one per whole
    session), from the candidates collected once per question: a fixed share (the previous rule) against the
    grid of confidence ratios and depths (fitted on lines), then the length range (fitted on whole sessions)."""
    shapes = {"lines": convmem_corpus(sessions=sessions, questions=questions),
              "sessions": session_corpus(sessions=3 * sessions, questions=questions)}
    found = {name: await _candidates(corpus, work) for name, corpus in shapes.items()}

    def score(share: Callable[[Candidates], float]) -> dict[str, Any]:
        out = {}
        for name, (cands, titles) in found.items():
            tops = [[titles[m.title] for m in _top(c, share)] for c in cands]
            out[name] = asdict(evaluate(tops, shapes[name].questions))
        return out

    fixed = {f"fixed w={w}": score(_fixed(w)) for w in (0.2, 0.5, 0.65, 0.8, 1.0)}
    ratio = {f"confidence={a} depth={k}": score(partial(dense_share, confidence=a, depth=k))
             for a in (1.0, 2.0, 3.0, 4.0, 6.0) for k in (3, 5, 10)}
    length = {f"long={lo}-{hi}": score(partial(dense_share, long=(lo, hi)))
              for lo, hi in ((80, 500), (100, 400), (100, 600), (150, 1000), (10**9, 10**9 + 1))}
    return {"fixed": fixed, "confidence_at_default_length": ratio, "length_at_default_confidence": length}


def _fixed(w: float) -> Callable[[Candidates], float]:
    """The previous rule: one dense share for every query."""
    return lambda _: w


def session_corpus(*, sessions: int, questions: int) -> Corpus:
    """The generated corpus with one memory per whole session (``bench_semantic``'s quality shape)."""
    data = generate(memories=sessions, questions=questions)
    return Corpus("sessions", [Passage(i.key, i.title, i.content) for i in data.items],
                  [GoldQuestion(q.text, frozenset({q.evidence}), q.kind) for q in data.questions])


def _table(results: dict[str, Any]) -> str:
    lines = ["| corpus | method | pass | recall@5 | recall@10 | MRR | p50 ms | p95 ms |",
             "|---|---|---|---|---|---|---|---|"]
    for corpus, by_method in results["corpora"].items():
        for method in ("bm25", *(m for m, _ in METHODS)):
            for run, s in by_method[method].items():
                if not run.startswith("pass"):
                    continue
                lines.append(f"| {corpus} | {method} | {run[4:]} | {s['recall_at_5']:.3f} | {s['recall_at_10']:.3f} "
                             f"| {s['mrr']:.3f} | {s['p50_ms']} | {s['p95_ms']} |")
    return "\n".join(lines)


def verdicts(results: dict[str, Any]) -> list[tuple[str, bool]]:
    """Ours (first pass) ahead of every baseline on recall@5 and @10 in each corpus; second pass within 0.01."""
    out = []
    for corpus, r in results["corpora"].items():
        ours = r["ours"]["pass1"]
        for k in ("recall_at_5", "recall_at_10"):
            rivals = [r[m]["pass1"][k] for m in ("bm25", "dense", "original")]
            out.append((f"{corpus} {k}: ours {ours[k]:.3f} > best baseline {max(rivals):.3f}", ours[k] > max(rivals)))
        if "pass2" in r["ours"]:
            drift = r["ours"]["pass1"]["recall_at_10"] - r["ours"]["pass2"]["recall_at_10"]
            out.append((f"{corpus} second pass recall@10 drop {drift:+.3f} <= 0.01", drift <= 0.01))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run of a minute or two")
    parser.add_argument("--fit", action="store_true", help="fit our fusion on the generated corpus only")
    parser.add_argument("--corpus", choices=("all", "convmem", "chatterbot"), default="all")
    parser.add_argument("--out", type=Path, default=Path("."), help="where bench_quality.json goes")
    args = parser.parse_args(argv)
    sessions, questions = (60, 40) if args.quick else (1000, 400)
    loaders: dict[str, Callable[[], Corpus]] = {
        "convmem": lambda: convmem_corpus(sessions=sessions, questions=questions),
        "chatterbot": lambda: _subset(chatterbot(), 60) if args.quick else chatterbot()}
    with tempfile.TemporaryDirectory(prefix="bench-quality-") as tmp:
        work = Path(tmp)
        if args.fit:
            fit = asyncio.run(_fit(work, sessions=sessions, questions=questions))
            print(json.dumps(fit, indent=1))
            return 0
        names = list(loaders) if args.corpus == "all" else [args.corpus]
        results: dict[str, Any] = {"meta": {"quick": args.quick, "limit": LIMIT}, "corpora": {}}
        for name in names:
            results["corpora"][name] = run_corpus(loaders[name](), work, passes=2)
    checks = verdicts(results)
    results["verdicts"] = [{"check": text, "pass": ok} for text, ok in checks]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench_quality.json").write_text(json.dumps(results, indent=1))
    print(_table(results))
    for text, ok in checks:
        print(f"{'PASS' if ok else 'FAIL'}  {text}")
    return 0


def _subset(corpus: Corpus, questions: int) -> Corpus:
    """The first ``questions`` questions, and every passage (the distractors stay)."""
    return Corpus(corpus.name, corpus.passages, corpus.questions[:questions])


if __name__ == "__main__":
    sys.exit(main())
