"""The regional log of the global hive: one partition per region, each a JetStream stream placed in its region.

A hive is a NATS supercluster with one cluster per region (the cluster's name is the region's name). For a log
family ``ai-memory`` and regions A, B, C:

- region A's *origin stream* ``ai-memory_A`` lives (R = ``replicas``) in cluster A; nodes of region A append
  only there, so a regional write waits on nobody outside the region;
- region A holds a *mirror* of every other origin (``ai-memory_B_in_A``, ``ai-memory_C_in_A``), placed in
  cluster A. JetStream fills the mirrors over the gateways, asynchronously, and catches them up after a
  partition. A mirror keeps its origin's sequence numbers, so its records carry the origin's partition name
  and offset: a clock ``{ai-memory_A: 7, ai-memory_B: 3, ...}`` means the same in every region;
- every read is local to the region: the own partition from the origin stream, the others from the mirrors.
  A region cut off from the rest keeps appending and reading; what it lacks is the other regions' news.

``expected`` (optimistic concurrency) applies to the own partition only: the other partitions are read-only
histories written elsewhere, which no append here can be conditional on (merging concurrent cross-region writes
is the read models' job). Consumer positions are kept in the origin stream's positions bucket (in the region).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import re
import ssl
from collections.abc import Sequence
from typing import Any

from nats.aio.client import Client as NatsClient

from infra.log.base import Clock, EventLog, LogPosition, LogRecord, merge_clocks
from infra.log.errors import LogError, LogUnavailableError
from infra.log.jetstream import DEFAULT_STREAM, JetStreamLog, StreamShape, confirm_subject, default_prefix
from schemas import SignedEvent

__all__ = ["REGION_NAME", "RegionalLog", "mirror_stream", "origin_stream"]

#: A region's name: also its NATS cluster's (and gateway's) name, and part of stream names.
REGION_NAME = re.compile(r"[A-Za-z0-9-]{1,32}")


def origin_stream(family: str, region: str) -> str:
    """The stream a region's nodes append to (and the partition name its records carry everywhere)."""
    return f"{family}_{region}"


def mirror_stream(family: str, origin: str, region: str) -> str:
    """``region``'s local copy of ``origin``'s stream."""
    return f"{family}_{origin}_in_{region}"


def check_regions(region: str, regions: Sequence[str]) -> None:
    bad = [r for r in regions if not REGION_NAME.fullmatch(r)]
    if bad or len(set(regions)) != len(regions):
        msg = f"regions must be distinct names of letters, digits and '-': {list(regions)}"
        raise LogError(msg)
    if region not in regions:
        msg = f"region {region!r} is not one of the hive's regions {list(regions)}"
        raise LogError(msg)


async def _ensure_origin(servers: str, family: str, origin: str, *, replicas: int, client: NatsClient,
                         timeout: float) -> None:
    """Create another region's origin stream (placed in that region) if it is absent, before mirroring it:
    JetStream retries a mirror of a missing stream only after a backoff of tens of seconds, so a hive whose
    nodes start one region after another would otherwise wait that long for its first cross-region read. Best
    effort: a region unreachable now is mirrored once it is (the mirror retries on its own)."""
    with contextlib.suppress(LogUnavailableError, TimeoutError):
        async with asyncio.timeout(timeout):
            log = await JetStreamLog.connect(servers, stream=origin_stream(family, origin), replicas=replicas,
                                             timeout=timeout, shape=StreamShape(cluster=origin), connection=client)
            await log.close()


class RegionalLog(EventLog):
    ATOMIC_BATCHES = True
    SUPPORTS_EXPECTED = True
    DEDUP_FOREVER = False

    @property
    def partitioned(self) -> bool:
        return True  # one partition per region, interleaved differently on each node

    def __init__(self, own: JetStreamLog, mirrors: Sequence[JetStreamLog], *, family: str, region: str,
                 regions: Sequence[str]) -> None:
        self._own = own
        self._parts = [own, *mirrors]
        self._family = family
        self.region = region
        self.regions = list(regions)

    @classmethod
    async def connect(cls, servers: str, *, family: str = DEFAULT_STREAM, region: str, regions: Sequence[str],
                      replicas: int = 1, tls: ssl.SSLContext | None = None, timeout: float = 5.0) -> RegionalLog:
        """Connect to ``servers`` (this region's, ``nats://h1:p1,h2:p2``), creating the region's origin stream and
        its mirrors of every other region if absent.

        Raises:
            LogUnavailableError: no server answered, or a stream could not be created in time.
            LogError: bad region names, or a stream exists with another shape.
        """
        check_regions(region, regions)
        own = await JetStreamLog.connect(servers, stream=origin_stream(family, region), replicas=replicas,
                                         tls=tls, timeout=timeout, shape=StreamShape(cluster=region))
        mirrors: list[JetStreamLog] = []
        try:
            for origin in regions:
                if origin != region:
                    await _ensure_origin(servers, family, origin, replicas=replicas, client=own.client,
                                         timeout=timeout)
                    shape = StreamShape(cluster=region, mirror_of=origin_stream(family, origin))
                    mirrors.append(await JetStreamLog.connect(
                        servers, stream=mirror_stream(family, origin, region), replicas=replicas, timeout=timeout,
                        shape=shape, connection=own.client))
        except BaseException:
            for log in [*mirrors, own]:
                await log.close()
            raise
        return cls(own, mirrors, family=family, region=region, regions=regions)

    # ---- what the node and the confirmation channel need beyond the contract ----------------------------

    @property
    def url(self) -> str:
        servers = self._own.url.rsplit("/", 1)[0]
        return f"{servers}/{self._family}?region={self.region}&regions={','.join(self.regions)}"

    @property
    def stream(self) -> str:
        return self._own.stream

    @property
    def client(self) -> NatsClient:
        return self._own.client

    @property
    def confirm_subject(self) -> str:
        """The region's own confirmation subject: regional quorum counts the region's nodes only."""
        return self._own.confirm_subject

    @property
    def region_confirm_subjects(self) -> dict[str, str]:
        """Every region's confirmation subject (for acknowledgements from several regions)."""
        return {r: confirm_subject(default_prefix(origin_stream(self._family, r))) for r in self.regions}

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "region": self.region, "regions": self.regions,
                "partitions": [p.stream for p in self._parts]}

    async def cluster_info(self) -> dict[str, Any]:
        return await self._own.cluster_info()

    # ---- EventLog ---------------------------------------------------------------------------------------

    async def append(self, events: Sequence[SignedEvent], *, expected: Clock | None = None,
                     new: bool = False) -> list[LogPosition]:
        own = origin_stream(self._family, self.region)
        mine = None if expected is None else {own: expected[own]} if own in expected else {}
        return await self._own.append(events, expected=mine, new=new)

    async def read(self, *, after: Clock | None = None, limit: int = 1000) -> list[LogRecord]:
        """Up to ``limit`` records, each partition in order, the partitions merged by event time (as the Kafka
        log merges its partitions), so a reader far behind sees every region's history advance together."""
        if limit <= 0:
            return []
        runs = await asyncio.gather(*(part.read(after=after, limit=limit) for part in self._parts))
        keyed = [[(r.event.envelope.ts, r.partition, r) for r in run] for run in runs]
        merged = itertools.islice(heapq.merge(*keyed, key=lambda item: item[:2]), limit)
        return [record for _ts, _p, record in merged]

    async def wait_for_append(self, after: Clock, *, timeout: float) -> None:
        waits = [asyncio.ensure_future(part.wait_for_append(after, timeout=timeout)) for part in self._parts]
        try:
            done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*waits, return_exceptions=True)
        for wait in done:
            wait.result()  # a closed log or an outage surfaces here, as from a single stream

    async def end_offsets(self) -> Clock:
        return merge_clocks(*await asyncio.gather(*(part.end_offsets() for part in self._parts)))

    async def commit_position(self, consumer: str, clock: Clock) -> None:
        await self._own.commit_position(consumer, clock)

    async def committed_position(self, consumer: str) -> Clock:
        return await self._own.committed_position(consumer)

    async def close(self) -> None:
        for part in reversed(self._parts):  # the mirrors share the own log's connection: it closes last
            await part.close()
