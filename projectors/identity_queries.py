"""The identity reads (:class:`projectors.identity.IdentityQueries`), one set of SQL for both read models over
:class:`~projectors.sql.Sql`: a backend only says how a statement runs."""

from __future__ import annotations

from projectors.identity import SCOPE_COUNT_SQL, SCOPE_GROUPS_SQL, AgentKey, IdentityQueries, ScopeCount
from projectors.identity_store import KEY_COLUMNS, agent_key
from projectors.sql import Sql

__all__ = ["SqlIdentityQueries"]


class SqlIdentityQueries(IdentityQueries):
    def __init__(self, sql: Sql) -> None:
        self._sql = sql

    def agent_key(self, agent_id: str) -> AgentKey | None:
        return agent_key(self._sql, agent_id)

    def agent_keys(self) -> list[AgentKey]:
        rows = self._sql.rows(f"SELECT {KEY_COLUMNS} FROM agent_keys ORDER BY agent_id", {})
        return [AgentKey(r["agent_id"], r["key_id"], r["public_key"], r["registered_at"]) for r in rows]

    def required_prefixes(self) -> list[str]:
        return [r["prefix"] for r in self._sql.rows("SELECT prefix FROM as_agent_required ORDER BY prefix", {})]

    def scope_counts(self, now: str) -> list[ScopeCount]:
        rows = self._sql.rows(f"SELECT {SCOPE_COUNT_SQL} FROM memories WHERE expires_at IS NULL OR "
                              f"expires_at > :now {SCOPE_GROUPS_SQL}", {"now": now})
        return [ScopeCount(r["namespace"], r["scope"], int(r["n"]), r["owner"]) for r in rows]
