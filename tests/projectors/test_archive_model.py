"""The archive contract on SQLite and on Postgres, and the same answers from both."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from projectors import SQLiteReadModel, Verdict
from projectors.postgres import PostgresReadModel
from tests.contract.archive_contract import ArchiveContract, archive_log


@pytest.fixture
def lite(tmp_path: Path) -> Iterator[SQLiteReadModel]:
    m = SQLiteReadModel(tmp_path / "rm.db")
    yield m
    m.close()


@pytest.fixture
def pg(postgres_url: str) -> Iterator[PostgresReadModel]:
    m = PostgresReadModel(postgres_url)
    yield m
    m.close()


class TestSQLiteArchive(ArchiveContract):
    @pytest.fixture
    def model(self, lite: SQLiteReadModel) -> SQLiteReadModel:
        return lite


class TestPostgresArchive(ArchiveContract):
    @pytest.fixture
    def model(self, pg: PostgresReadModel) -> PostgresReadModel:
        return pg


def test_both_backends_answer_alike(lite: SQLiteReadModel, pg: PostgresReadModel, tmp_path: Path) -> None:
    records = archive_log(tmp_path)
    for model in (lite, pg):
        model.apply_batch([Verdict(r) for r in records])
    assert lite.archive.list_archived(limit=10) == pg.archive.list_archived(limit=10)
    assert lite.archive.stats() == pg.archive.stats()
    assert all(lite.archive.vector(i) == pg.archive.vector(i) for i in ("a1", "a2", "a5"))
