"""The knowledge-graph contract on both read models, and one log applied to both gives the same graph."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from projectors import SQLiteReadModel
from projectors.postgres import PostgresReadModel
from tests.contract.graph_contract import GraphContract, load, query, recorded_graph


class TestSQLiteGraph(GraphContract):
    @pytest.fixture
    def model(self, tmp_path: Path) -> Iterator[SQLiteReadModel]:
        m = SQLiteReadModel(tmp_path / "rm.db")
        yield m
        m.close()


class TestPostgresGraph(GraphContract):
    @pytest.fixture
    def model(self, postgres_url: str) -> Iterator[PostgresReadModel]:
        m = PostgresReadModel(postgres_url)
        yield m
        m.close()


def test_bulk_replay_builds_the_same_graph(tmp_path: Path) -> None:
    """A rebuild replays into a model without its index triggers: the graph does not depend on them."""
    rec, marks = recorded_graph(tmp_path)
    live, bulk = SQLiteReadModel(tmp_path / "live.db"), SQLiteReadModel(tmp_path / "bulk.db", bulk=True)
    load(live, rec.records)
    load(bulk, rec.records)
    bulk.finish_bulk()
    for at in (*marks.values(), None):
        assert query(live, "a", 5, at=at) == query(bulk, "a", 5, at=at)
        assert live.graph.all_links(at=at) == bulk.graph.all_links(at=at)
