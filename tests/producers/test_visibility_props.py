"""Property tests: no read path ever returns a memory the caller may not see.

Random namespaces, scopes, agents and mandatory-as_agent prefixes (hypothesis, SQLite read model; a fixed
sample on Postgres). The oracle below is written from the reference's table (§7, "Scope visibility"), not from
the code under test. Every read path is checked: get, list, search, recall (keyword), export, taxonomy,
sync/since (both forms); the vector index's filter is checked on its own.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from producers.errors import NotFoundError
from producers.identity.visibility import AsAgentRequiredError
from producers.input.commands import ListQuery, RecallQuery, parse_create
from producers.memory.taxonomy import visible_export, visible_taxonomy
from producers.runtime.node import Node, NodeConfig
from producers.sync.service import since_clock, since_time
from projectors import HnswIndex, VectorFilter
from projectors.hnsw.index import Entry
from schemas import now_ts

SEGMENTS = ("a", "b", "c")
SCOPES = ("private", "team", "unit", "org", "collective", None)


def oracle(scope: str | None, namespace: str, as_agent: str | None, required: set[str]) -> bool:
    """The reference's rule, as its table states it."""
    if as_agent is None:
        return not any(namespace == p or namespace.startswith(p + "/") for p in required)
    parts = as_agent.split("/")
    ancestors = ["/".join(parts[:len(parts) - i]) for i in range(4)]  # self, parent, grandparent, great-gp
    level = {"private": 0, None: 0, "team": 1, "unit": 2, "org": 3}.get(scope)
    if scope == "collective":
        return True
    if level is None or level >= len(parts):
        return False
    anchor = ancestors[level]
    if level == 0:
        return namespace == anchor
    return namespace == anchor or namespace.startswith(anchor + "/")


@dataclass
class Scenario:
    memories: list[tuple[str, str | None]]  # (namespace under the root, scope)
    agents: list[str]
    required: list[str]


@dataclass
class World:
    """Everything stored so far (scenarios share one node, each under its own root namespace)."""

    node: Node
    loop: asyncio.AbstractEventLoop
    memories: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    required: set[str] = field(default_factory=set)
    roots: int = 0


namespaces = st.lists(st.sampled_from(SEGMENTS), min_size=1, max_size=4).map("/".join)
scenarios = st.builds(Scenario,
                      memories=st.lists(st.tuples(namespaces, st.sampled_from(SCOPES)), min_size=1, max_size=10),
                      agents=st.lists(namespaces, min_size=1, max_size=3),
                      required=st.lists(namespaces, max_size=2))


def random_scenario(rng: random.Random) -> Scenario:
    def ns() -> str:
        return "/".join(rng.choice(SEGMENTS) for _ in range(rng.randint(1, 4)))
    return Scenario(memories=[(ns(), rng.choice(SCOPES)) for _ in range(rng.randint(1, 10))],
                    agents=[ns() for _ in range(rng.randint(1, 3))], required=[ns() for _ in range(rng.randint(0, 2))])


async def _store(world: World, root: str, scenario: Scenario) -> list[str]:
    items = []
    for i, (namespace, scope) in enumerate(scenario.memories):
        body: dict[str, object] = {"title": f"{root} m{i}", "content": f"alpha shared words {i}",
                                   "namespace": f"{root}/{namespace}", "tier": "long"}
        if scope is not None:
            body["scope"] = scope
        items.append(parse_create(body, now=now_ts()))
    ids, errors, _ = await world.node.service.bulk_store(items, agent_id="writer")
    assert not errors
    for memory_id, (namespace, scope) in zip(ids, scenario.memories, strict=True):
        world.memories[memory_id] = (f"{root}/{namespace}", scope)
    for prefix in scenario.required:
        await world.node.identity.set_as_agent_required(f"{root}/{prefix}", True, actor="operator:test")
        world.required.add(f"{root}/{prefix}")
    return ids


def _allowed(world: World, as_agent: str | None) -> set[str]:
    return {i for i, (ns, scope) in world.memories.items() if oracle(scope, ns, as_agent, world.required)}


def _named_refused(world: World, namespace: str, as_agent: str | None) -> bool:
    return as_agent is None and any(namespace == p or namespace.startswith(p + "/") for p in world.required)


async def _check_reads(world: World, root: str, ids: list[str], as_agent: str | None) -> None:
    service = world.node.service
    allowed = _allowed(world, as_agent)
    listed = await service.list_memories(ListQuery(limit=100_000, as_agent=as_agent))
    assert {m.id for m in listed} == allowed
    assert {m.id for m in await service.search("alpha", ListQuery(limit=200, as_agent=as_agent))} <= allowed
    recalled = await service.recall(RecallQuery("alpha words", ListQuery(limit=50, as_agent=as_agent),
                                                mode="keyword"), agent_id="reader")
    assert {h.memory.id for h in recalled.memories} <= allowed
    assert {m.id for m in await visible_export(world.node, as_agent)} == allowed
    tree = await visible_taxonomy(world.node, prefix="", depth=8, limit=10_000, as_agent=as_agent)
    assert tree["total_count"] == len(allowed)
    reader = world.node.identity.visibility.reader(as_agent)
    assert {m["id"] for m in (await since_time(service, None, "10000", reader=reader))["memories"]} == allowed
    since = await since_clock(service, {}, "10000", reader=reader)
    assert {m["id"] for m in since["memories"]} <= allowed
    for memory_id in ids:
        namespace = world.memories[memory_id][0]
        if memory_id in allowed:
            assert (await service.get(memory_id, as_agent=as_agent)).id == memory_id
            continue
        with pytest.raises(AsAgentRequiredError if _named_refused(world, namespace, as_agent) else NotFoundError):
            await service.get(memory_id, as_agent=as_agent)
    for namespace in {world.memories[i][0] for i in ids}:
        q = ListQuery(namespace=namespace, limit=200, as_agent=as_agent)
        if _named_refused(world, namespace, as_agent):
            with pytest.raises(AsAgentRequiredError):
                await service.list_memories(q)
        else:
            assert {m.id for m in await service.list_memories(q)} <= allowed


async def run_scenario(world: World, scenario: Scenario) -> None:
    world.roots += 1
    root = f"r{world.roots}"
    ids = await _store(world, root, scenario)
    for as_agent in [None, *(f"{root}/{a}" for a in scenario.agents)]:
        await _check_reads(world, root, ids, as_agent)


@pytest.fixture(scope="module")
def sqlite_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    loop = asyncio.new_event_loop()
    config = NodeConfig(data_dir=tmp_path_factory.mktemp("vis") / "node", embedder="off")
    node = loop.run_until_complete(Node.open(config))
    try:
        yield World(node, loop)
    finally:
        loop.run_until_complete(node.close())
        loop.close()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(scenario=scenarios)
def test_no_read_path_shows_what_the_caller_may_not_see(sqlite_world: World, scenario: Scenario) -> None:
    sqlite_world.loop.run_until_complete(run_scenario(sqlite_world, scenario))


def test_postgres_read_model_with_a_fixed_sample(postgres_url: str, tmp_path: Path) -> None:
    loop = asyncio.new_event_loop()
    config = NodeConfig(data_dir=tmp_path / "node", embedder="off", read_model_url=postgres_url)
    node = loop.run_until_complete(Node.open(config))
    try:
        world = World(node, loop)
        rng = random.Random(20261127)
        for _ in range(8):
            loop.run_until_complete(run_scenario(world, random_scenario(rng)))
        assert len(world.memories) > 20 and world.required
    finally:
        loop.run_until_complete(node.close())
        loop.close()


@given(entries=st.lists(st.tuples(namespaces, st.sampled_from(SCOPES[:-1])), min_size=1, max_size=40),
       as_agent=st.none() | namespaces, hidden=st.lists(namespaces, max_size=2))
@settings(max_examples=60, deadline=None)
def test_the_vector_index_filter_agrees(entries: list[tuple[str, str]], as_agent: str | None,
                                        hidden: list[str]) -> None:
    """Semantic candidates come from the HNSW index, filtered inside the search: the same rule."""
    rng = np.random.default_rng(len(entries))
    index = HnswIndex(8, capacity=64)
    items = []
    for i, (namespace, scope) in enumerate(entries):
        vector = rng.normal(size=8).astype("<f4")
        items.append((Entry(f"m{i}", namespace, scope), (vector / np.linalg.norm(vector)).astype("<f4").tobytes()))
    index.upsert(items)
    query = np.ones(8, dtype=np.float32) / np.sqrt(8)
    flt = VectorFilter(as_agent=as_agent, hidden_prefixes=tuple(hidden))
    hits = index.search(query, len(entries), flt)
    allowed = {f"m{i}" for i, (ns, scope) in enumerate(entries) if oracle(scope, ns, as_agent, set())
               and not any(ns == p or ns.startswith(p + "/") for p in hidden)}
    # A small index is scanned exactly: nothing hidden comes back, and nothing visible is lost.
    assert {h.id for h in hits} == allowed
