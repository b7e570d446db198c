"""Several embedding models in one log: each HNSW index holds one model's vectors (a 768-dimension model beside
MiniLM's 384), another model's vectors are skipped and counted but never mixed in, a snapshot of one model is
never loaded for another, and SQLite keeps any model's vector with its name so readers ask for their own."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from projectors import HnswReadModel, MemoryFilter, Verdict, index_dir, open_read_model
from schemas import encode_vector
from tests.factories import node_key
from tests.semantic.test_hnsw import Feed, stored, unit

MINILM = "all-MiniLM-L6-v2"
WIDE = "nomic-embed-text"


@pytest.fixture
def feed(tmp_path: Path) -> Feed:
    return Feed(node_key(tmp_path))


def vector_of(memory_id: str, model: str, vector: np.ndarray) -> dict[str, object]:
    return {
        "id": memory_id,
        "model": model,
        "dim": int(vector.shape[0]),
        "vector": encode_vector(vector.astype("<f4").tobytes()),
    }


def two_models(feed: Feed) -> tuple[list[Verdict], dict[str, np.ndarray]]:
    """Memories a, b, c: a and b embedded by MiniLM (384), b and c by the 768 model."""
    rng = np.random.default_rng(7)
    small, wide = unit(rng, 2), unit(rng, 2, dim=768)
    verdicts = [feed("memory.stored", stored(m)) for m in ("a", "b", "c")]
    verdicts += [
        feed("memory.embedded", vector_of("a", MINILM, small[0])),
        feed("memory.embedded", vector_of("b", MINILM, small[1])),
        feed("memory.embedded", vector_of("b", WIDE, wide[0])),
        feed("memory.embedded", vector_of("c", WIDE, wide[1])),
    ]
    return verdicts, {"a": small[0], "b384": small[1], "b768": wide[0], "c": wide[1]}


def test_each_index_holds_only_its_models_vectors(tmp_path: Path, feed: Feed) -> None:
    verdicts, v = two_models(feed)
    small = HnswReadModel.open(tmp_path / "small", dim=384, model=MINILM)
    wide = HnswReadModel.open(tmp_path / "wide", dim=768, model=WIDE)
    try:
        for model in (small, wide):
            model.apply_batch(verdicts)
        assert sorted(e.id for e in small.index.entries.values()) == ["a", "b"]
        assert sorted(e.id for e in wide.index.entries.values()) == ["b", "c"]
        assert (small.other_model, wide.other_model) == (2, 2)
        assert small.dim_violations == wide.dim_violations == 0, "another model's vector is no dimension error"
        hits = wide.index.search(v["c"], 3)
        assert hits[0].id == "c" and hits[0].cosine > 0.999 and {h.id for h in hits} == {"b", "c"}
    finally:
        small.close()
        wide.close()


def test_a_snapshot_of_one_model_is_never_loaded_for_another(tmp_path: Path, feed: Feed) -> None:
    verdicts, _ = two_models(feed)
    first = HnswReadModel.open(tmp_path / "hnsw", dim=384, model=MINILM)
    first.apply_batch(verdicts)
    first.close()
    again = HnswReadModel.open(tmp_path / "hnsw", dim=384, model=MINILM)
    assert again.loaded_from.startswith("snapshot") and len(again.index) == 2
    again.close()
    other = HnswReadModel.open(tmp_path / "hnsw", dim=384, model="bge-small-en")
    assert other.loaded_from.startswith("rebuilt: model") and len(other.index) == 0 and other.position() == {}
    other.close()


def test_each_model_has_its_own_index_directory(tmp_path: Path) -> None:
    assert index_dir(tmp_path, MINILM, 384, default_model=MINILM) == tmp_path / "hnsw"
    assert index_dir(tmp_path, WIDE, 768, default_model=MINILM) == tmp_path / "hnsw-nomic-embed-text-768"
    assert index_dir(tmp_path, "org/model:v2", 1024, default_model=MINILM) == tmp_path / "hnsw-org_model_v2-1024"


def test_sqlite_keeps_any_models_vector_and_readers_ask_for_theirs(tmp_path: Path, feed: Feed) -> None:
    verdicts, v = two_models(feed)
    model = open_read_model("", default_path=tmp_path / "readmodel.db")
    try:
        result = model.apply_batch(verdicts)
        assert result.rejected == 0 and model.dim_violations() == 0
        q = model.queries
        # One vector per memory, the latest: b's is now the 768 model's.
        assert set(q.vectors(["a", "b", "c"], model=WIDE)) == {"b", "c"}
        assert set(q.vectors(["a", "b", "c"], model=MINILM)) == {"a"}
        assert q.vectors(["c"], model=WIDE)["c"] == v["c"].astype("<f4").tobytes()
        assert set(q.vectors(["a", "b", "c"])) == {"a", "b", "c"}
        tiny = feed("memory.embedded", vector_of("a", "toy", np.ones(3, dtype=np.float32)))
        assert model.apply_batch([tiny]).rejected == 1 and model.dim_violations() == 1
    finally:
        model.close()


def test_pgvector_searches_only_the_asked_models_vectors(tmp_path: Path, feed: Feed, postgres_url: str) -> None:
    """Two 384-dimension models in one shared Postgres: the column takes both, a search asks for its own."""
    rng = np.random.default_rng(11)
    v = unit(rng, 3)
    model = open_read_model(postgres_url, default_path=tmp_path / "unused.db")
    try:
        verdicts = [feed("memory.stored", stored(m)) for m in ("a", "b", "c")]
        verdicts += [
            feed("memory.embedded", vector_of("a", MINILM, v[0])),
            feed("memory.embedded", vector_of("b", "bge-small-en", v[1])),
            feed("memory.embedded", vector_of("c", "bge-small-en", v[2])),
        ]
        assert model.apply_batch(verdicts).rejected == 0
        search = model.vector_search()
        assert search is not None and search.kind == "pgvector"
        flt = MemoryFilter()
        assert {h.id for h in search.search(v[0], 3, flt)} == {"a", "b", "c"}
        assert [h.id for h in search.search(v[0], 3, flt, model=MINILM)] == ["a"]
        assert {h.id for h in search.search(v[0], 3, flt, model="bge-small-en")} == {"b", "c"}
    finally:
        model.close()
