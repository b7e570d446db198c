"""The regional log on a real two-region NATS supercluster (one server per region, joined by gateways): the
shared log contract for a region's log, then what only a hive can get wrong (mirrors keep the origin's offsets,
a region reads another's writes locally, ``expected`` names the own partition only)."""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import nats
import pytest

from infra.cluster.supercluster import NatsSupercluster
from infra.log import AppendConflictError, EventLog, LogConfig, LogError, LogRecord, open_log
from infra.log.jetstream import Header, subject_for
from infra.log.regional import RegionalLog, origin_stream
from schemas import NodeKey
from tests.contract.log_contract import LogContract, RawAppend, read_all
from tests.factories import node_key, signed

pytestmark = [pytest.mark.nats, pytest.mark.slow]
REGIONS = ("east", "west")


@pytest.fixture(scope="module")
def hive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsSupercluster]:
    from tests.conftest import _require_nats_server

    _require_nats_server()
    with NatsSupercluster(store_dir=tmp_path_factory.mktemp("hive"), regions=REGIONS, servers_per_region=1) as h:
        yield h


async def _open(hive: NatsSupercluster, region: str, family: str) -> EventLog:
    return await open_log(LogConfig(url=hive.log_url(region, family)))


@pytest.fixture
def family() -> str:
    return f"t-{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def log(hive: NatsSupercluster, family: str) -> AsyncIterator[EventLog]:
    async with await _open(hive, "east", family) as log:
        yield log


@pytest.fixture
def raw_append(hive: NatsSupercluster, family: str) -> RawAppend:
    """Publish straight to east's origin stream, past the adapter."""

    async def append(body: bytes, signature: bytes | None) -> None:
        nc = await nats.connect(hive.regions["east"].url.split(","))
        headers = {Header.MSG_ID: uuid.uuid4().hex}
        if signature is not None:
            headers[Header.SIGNATURE] = base64.b64encode(signature).decode()
        await nc.jetstream().publish(subject_for(f"aimem.{origin_stream(family, 'east')}", "raw"), body,
                                     headers=headers)
        await nc.close()

    return append


class TestRegionalLog(LogContract):
    pass


@pytest.fixture
def key(tmp_path: Path) -> NodeKey:
    return node_key(tmp_path)


async def _read_until(log: EventLog, count: int, *, timeout: float = 20.0) -> list[LogRecord]:
    async with asyncio.timeout(timeout):
        while len(records := await read_all(log)) < count:
            await log.wait_for_append({}, timeout=0.2)
        return records


async def test_a_write_in_one_region_is_read_in_the_other_with_the_same_positions(
        hive: NatsSupercluster, family: str, key: NodeKey) -> None:
    async with await _open(hive, "east", family) as east, await _open(hive, "west", family) as west:
        east_positions = await east.append([signed(key) for _ in range(3)])
        west_positions = await west.append([signed(key) for _ in range(2)])
        assert {p.partition for p in east_positions} == {f"{family}_east"}
        assert {p.partition for p in west_positions} == {f"{family}_west"}
        seen_in_west = await _read_until(west, 5)
        seen_in_east = await _read_until(east, 5)
        mine = {(r.partition, r.offset, r.event.event_id) for r in seen_in_west}
        assert mine == {(r.partition, r.offset, r.event.event_id) for r in seen_in_east}
        assert {r.position for r in seen_in_west if r.partition == f"{family}_east"} == set(east_positions)
        end = await west.end_offsets()
        assert end == {f"{family}_east": 3, f"{family}_west": 2} == await east.end_offsets()


async def test_expected_checks_the_own_partition_only(hive: NatsSupercluster, family: str, key: NodeKey) -> None:
    async with await _open(hive, "east", family) as east, await _open(hive, "west", family) as west:
        await west.append([signed(key)])
        await east.append([signed(key)])
        # Another region's partition cannot be a condition of this region's append: it is not checked.
        await east.append([signed(key)], expected={f"{family}_east": 1, f"{family}_west": 99})
        with pytest.raises(AppendConflictError):
            await east.append([signed(key)], expected={f"{family}_east": 1})
        assert (await east.end_offsets())[f"{family}_east"] == 2


async def test_bad_region_urls_are_refused(hive: NatsSupercluster, family: str) -> None:
    servers = hive.regions["east"].url
    for query in ("region=north&regions=east,west", "region=east", "region=east&regions=east,west&x=1",
                  "region=e.st&regions=e.st,west"):
        with pytest.raises(LogError):
            await open_log(LogConfig(url=f"{servers}/{family}?{query}"))


async def test_the_url_names_the_region_and_the_hive(hive: NatsSupercluster, log: EventLog, family: str) -> None:
    assert isinstance(log, RegionalLog)
    assert log.url.endswith(f"/{family}?region=east&regions=east,west")
    assert log.describe()["partitions"] == [f"{family}_east", f"{family}_west_in_east"]
