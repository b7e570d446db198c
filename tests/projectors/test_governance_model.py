"""The governance contract on the SQLite and the Postgres read model."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from projectors import SQLiteReadModel
from projectors.postgres import PostgresReadModel
from tests.contract.governance_contract import GovernanceContract


class TestSQLiteGovernance(GovernanceContract):
    @pytest.fixture
    def model(self, tmp_path: Path) -> Iterator[SQLiteReadModel]:
        m = SQLiteReadModel(tmp_path / "rm.db")
        yield m
        m.close()


class TestPostgresGovernance(GovernanceContract):
    @pytest.fixture
    def model(self, postgres_url: str) -> Iterator[PostgresReadModel]:
        m = PostgresReadModel(postgres_url)
        yield m
        m.close()
