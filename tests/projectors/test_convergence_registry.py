"""Convergence of the agent registry and of the archive (issue #16, item 2): the same events from two or three
origin partitions, read in any interleaving, leave every SQLite and Postgres read model in the same state."""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from infra.log import LogRecord
from projectors import MemoryReadModel, Verdict
from schemas.events import (
    AgentKeyRegistered,
    AgentKeyRevoked,
    ArchivePurged,
    AsAgentRequirementSet,
    MemoriesArchived,
    MemoryRestored,
    MemoryStored,
)
from tests.projectors.convergence import Region, apply_in_turn, assert_converges, both_orders, hash_state, memory

AGENTS = ("ag-1", "ag-2")
KEYS = ("k1", "k2", "k3")
TS = "2026-12-01T11:00:{:02d}.000000+00:00"


def registered(agent: str, key: str, at: int) -> AgentKeyRegistered:
    return AgentKeyRegistered(agent, key, f"pk-{agent}-{key}", "proof", 0, TS.format(at))


def state(model: MemoryReadModel) -> str:
    """What every node must agree on: the registry, the prefixes requiring as_agent, the memories, the archive."""
    body: dict[str, Any] = {
        "keys": [k.to_api() for k in model.identity.agent_keys()],
        "required": model.identity.required_prefixes(),
        "memories": [m.to_payload() for m in model.queries.all_memories()],
        "archive": [a.to_api() for a in model.archive.list_archived(limit=1000)],
    }
    return hash_state(body)


# -- the agent registry: random registrations, rotations, revocations and requirements ----------------------

_register = st.tuples(st.just("register"), st.sampled_from(AGENTS), st.sampled_from(KEYS))
_revoke = st.tuples(st.just("revoke"), st.sampled_from(AGENTS), st.sampled_from(KEYS))
_require = st.tuples(st.just("require"), st.sampled_from(("team/", "ops/")), st.booleans())
_op = st.tuples(st.one_of(_register, _register, _revoke, _require), st.integers(0, 30))


def registry_regions(plans: list[list[tuple[Any, int]]]) -> list[Region]:
    regions = [Region(name) for name in ("eu", "us", "ap")[:len(plans)]]
    for region, plan in zip(regions, plans, strict=True):
        for op, at in plan:
            if op[0] == "register":
                region.add(registered(op[1], op[2], at), at=at)
            elif op[0] == "revoke":
                region.add(AgentKeyRevoked(op[1], op[2], TS.format(at)), at=at)
            else:
                region.add(AsAgentRequirementSet(op[1], op[2], TS.format(at)), at=at)
    return regions


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plans=st.lists(st.lists(_op, max_size=8), min_size=2, max_size=3), seed=st.integers(0, 2**32))
def test_the_registry_hashes_the_same_in_every_interleaving(models: Callable[[], MemoryReadModel],
                                                           plans: list[list[tuple[Any, int]]], seed: int) -> None:
    assert_converges(models, registry_regions(plans), random.Random(seed), state, mixed=2)


def test_a_revocation_wins_over_an_older_registration_whichever_arrives_first(
        models: Callable[[], MemoryReadModel]) -> None:
    eu, us = Region("eu"), Region("us")
    eu.add(registered("ag-1", "k1", 1), at=1)
    us.add(AgentKeyRevoked("ag-1", "k1", TS.format(5)), at=5)
    later = Region("ap")
    later.add(registered("ag-1", "k2", 9), at=9)  # a rotation after the revocation holds
    for model in both_orders(models, [eu, us]):
        assert model.identity.agent_key("ag-1") is None
        apply_in_turn(model, [later])
        key = model.identity.agent_key("ag-1")
        assert key is not None and key.key_id == "k2"


def test_the_latest_rotation_holds_whichever_arrives_first(models: Callable[[], MemoryReadModel]) -> None:
    eu, us = Region("eu"), Region("us")
    eu.add(registered("ag-1", "k1", 7), at=7)
    us.add(registered("ag-1", "k2", 3), at=3)
    for model in both_orders(models, [eu, us]):
        key = model.identity.agent_key("ag-1")
        assert key is not None and key.key_id == "k1"


# -- the archive: every pair of concurrent archive events on one memory, in both merge orders ---------------

M = memory("m1", "plan", "body", at=0)


def _prefix(archived: bool) -> Region:
    """The history every node has read before the two regions act: the memory stored (and archived)."""
    base = Region("base")
    base.add(MemoryStored(M), at=0)
    if archived:
        base.add(MemoriesArchived(["m1"], "archive", TS.format(1)), at=1)
    return base


def _archive_op(kind: str, region: Region, at: int) -> LogRecord:
    if kind == "archive":
        return region.add(MemoriesArchived(["m1"], f"by {region.name}", TS.format(at)), at=at)
    if kind == "restore":
        return region.add(MemoryRestored(M), at=at)
    return region.add(ArchivePurged(["m1"]), at=at)


_PAIRS = [("live", a, b) for a, b in [("archive", "archive")]] + [
    ("archived", a, b) for a, b in itertools.product(("restore", "purge"), repeat=2)]


def _each_arrival(models: Callable[[], MemoryReadModel], start: str, eu_op: tuple[str, int],
                  us_op: tuple[str, int]) -> Iterator[MemoryReadModel]:
    """Fresh models that read the shared history, then the two regions' events: each region whole in both
    orders, then both in one batch in both orders."""
    base, eu, us = _prefix(start == "archived"), Region("eu"), Region("us")
    _archive_op(eu_op[0], eu, eu_op[1])
    _archive_op(us_op[0], us, us_op[1])
    for order in ((eu, us), (us, eu)):
        model = models()
        apply_in_turn(model, [base, *order])
        yield model
        model = models()
        apply_in_turn(model, [base])
        model.apply_batch([Verdict(r.records[0]) for r in order])
        yield model


@pytest.mark.parametrize(("start", "eu_op", "us_op"), _PAIRS)
def test_concurrent_archive_events_converge(models: Callable[[], MemoryReadModel], start: str, eu_op: str,
                                            us_op: str) -> None:
    for eu_at, us_at in ((5, 6), (6, 5)):
        digests = {state(m) for m in _each_arrival(models, start, (eu_op, eu_at), (us_op, us_at))}
        assert len(digests) == 1, (eu_op, us_op, eu_at, us_at)


def test_two_archives_show_the_earlier_one_and_a_restore_wins_over_a_purge(
        models: Callable[[], MemoryReadModel]) -> None:
    for model in _each_arrival(models, "live", ("archive", 6), ("archive", 5)):
        row = model.archive.get("m1")
        assert row is not None and (row.archive_reason, row.archived_at) == ("by us", TS.format(5))
    for model in _each_arrival(models, "archived", ("purge", 5), ("restore", 6)):
        assert model.archive.get("m1") is None and model.queries.get("m1") is not None
