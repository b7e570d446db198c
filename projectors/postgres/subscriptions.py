"""Webhook subscriptions and their dead letters in the Postgres read model: the shared appliers
(:mod:`projectors.subscription_store`) over SQLAlchemy (tables from revision ``r0004_subscriptions``)."""

from __future__ import annotations

from projectors.appliers import over_sql
from projectors.postgres.sql import PostgresSql
from projectors.subscription_store import APPLIERS as SHARED

__all__ = ["APPLIERS"]

APPLIERS = over_sql(SHARED, PostgresSql)
