"""The proof's checks over the hive's HTTP API, as an agent sees it (:mod:`infra.cluster.proof` runs them).

Black-box on purpose: only the wire (``/api/v1``, the clock headers) and the launcher's ``hive.json``, never the
nodes' files, so what passes here is what a client of the hive gets. Each check returns :class:`Outcome` lines.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from infra.cluster.hive_file import HiveFile, HiveNode
from infra.tls import TlsFiles, client_context

__all__ = ["Api", "Outcome", "check_convergence", "check_pairs", "check_partition", "check_quorum"]

# The wire names (producers.http.base): the proof is a client and speaks the wire, not the code.
CLOCK = "X-AI-Memory-Clock"
WAIT_FOR = "X-AI-Memory-Wait-For"
_POLL = 0.2


@dataclass(frozen=True)
class Outcome:
    """One printed line: a check, whether it held, and its figure (or why not)."""

    name: str
    ok: bool
    figure: str


def _merge(*clocks: str) -> str:
    """The smallest clock covering every given one (``p:o,p:o`` as the headers carry it)."""
    merged: dict[str, int] = {}
    for clock in clocks:
        for part in filter(None, clock.split(",")):
            name, _, offset = part.rpartition(":")
            merged[name] = max(merged.get(name, 0), int(offset))
    return ",".join(f"{k}:{v}" for k, v in sorted(merged.items()))


class Api:
    """HTTP to the hive's nodes (HTTPS with the operator's certificate when the hive runs TLS)."""

    def __init__(self, hive: HiveFile, run: str) -> None:
        self.hive = hive
        self.run = run
        verify: Any = True
        if hive.tls is not None:
            verify = client_context(TlsFiles(Path(hive.tls.operator_cert), Path(hive.tls.operator_key),
                                             Path(hive.tls.ca)))
        # An anonymous reader sees no private memories (the original v0.7.0's rule): the proof writes and reads
        # as one agent, as a client of the hive would.
        self.http = httpx.Client(verify=verify, timeout=30, headers={"X-Agent-Id": "hive-proof"})

    def close(self) -> None:
        self.http.close()

    def url(self, node: str) -> str:
        return self.hive.nodes[node].url

    def store(self, node: str, title: str) -> httpx.Response:
        return self.http.post(f"{self.url(node)}/api/v1/memories", headers={"X-Agent-Id": "hive-proof"},
                              json={"title": title, "content": f"{title} (hive proof run {self.run})"})

    def recalled(self, node: str, token: str, memory: str, *, wait_for: str = "") -> bool:
        headers = {WAIT_FOR: wait_for} if wait_for else {}
        reply = self.http.get(f"{self.url(node)}/api/v1/recall", params={"context": token}, headers=headers)
        return reply.status_code == 200 and memory in {m["id"] for m in reply.json()["memories"]}

    def caught_up(self, node: str, clock: str, *, seconds: float) -> bool:
        """Whether ``node`` applies ``clock`` within ``seconds`` (a read naming it answers 200)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                if self.http.get(f"{self.url(node)}/api/v1/health", headers={WAIT_FOR: clock}).status_code == 200:
                    return True
            except httpx.TransportError:
                pass
            time.sleep(_POLL)
        return False

    def status_hash(self, node: str) -> dict[str, Any]:
        reply = self.http.get(f"{self.url(node)}/api/v1/status", params={"hash": "1"})
        reply.raise_for_status()
        found: dict[str, Any] = reply.json()["read_model_hash"]
        return found

    def region_nodes(self, region: str) -> list[str]:
        return self.hive.regions[region].nodes


def check_pairs(api: Api) -> list[Outcome]:
    """A write in each region, recalled in every other region (each ordered pair), with the writer's clock."""
    out = []
    regions = list(api.hive.regions)
    for source in regions:
        token = f"pair{api.run}{source}".replace("-", "")
        writer = api.region_nodes(source)[0]
        reply = api.store(writer, f"{token} written in {source}")
        if reply.status_code != 201:
            out.append(Outcome(f"write in {source}", False, f"{reply.status_code} {reply.text[:120]}"))
            continue
        memory, clock = reply.json()["id"], reply.headers[CLOCK]
        for target in (r for r in regions if r != source):
            reader = api.region_nodes(target)[-1]
            started = time.monotonic()
            seen = api.caught_up(reader, clock, seconds=60) and api.recalled(reader, token, memory)
            out.append(Outcome(f"write in {source} recalled in {target} ({writer} -> {reader})", seen,
                               f"{(time.monotonic() - started) * 1000:.0f} ms" if seen else "not recalled in 60 s"))
    return out


def check_convergence(api: Api, *, seconds: float = 90.0, settled_s: float = 10.0,
                      label: str = "convergence") -> Outcome:
    """Every node reports the same log position and the same read-model hash (bounded wait). Nodes that stay at
    one position with different hashes for ``settled_s`` have diverged: no later event will reconcile them."""
    started = time.monotonic()
    last: dict[str, Any] = {}
    diverged_since: float | None = None
    while time.monotonic() - started < seconds:
        try:
            last = {node: api.status_hash(node) for node in api.hive.nodes}
        except httpx.HTTPError as exc:
            last = {"error": repr(exc)}
        hashes = {h["memories"] for h in last.values() if isinstance(h, dict)}
        positions = [h["position"] for h in last.values() if isinstance(h, dict)]
        if "error" not in last and len(hashes) == 1 and all(p == positions[0] for p in positions):
            took = time.monotonic() - started
            return Outcome(f"{label}: read-model hash equal on all {len(last)} nodes", True,
                           f"sha256 {hashes.pop()[:12]}… at {sum(positions[0].values())} events, {took:.1f} s")
        same_place = "error" not in last and all(p == positions[0] for p in positions)
        diverged_since = (diverged_since or time.monotonic()) if same_place else None
        if diverged_since is not None and time.monotonic() - diverged_since > settled_s:
            break
        time.sleep(0.5)
    distinct: dict[str, list[str]] = {}  # nodes grouped by what they report
    for node, h in last.items():
        seen = f"{h['memories'][:12]} at {h['position']}" if isinstance(h, dict) else str(h)
        distinct.setdefault(seen, []).append(node)
    took = time.monotonic() - started
    return Outcome(f"{label}: read-model hash equal on all nodes", False, f"after {took:.0f} s: {distinct}")


def _pid_of(node: HiveNode) -> int | None:
    """The node's recorded pid, if that process still is that node (a pid is reused after an exit)."""
    if node.pid is None:
        return None
    try:
        command = Path(f"/proc/{node.pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    return node.pid if node.data_dir.encode() in command else None


@contextmanager
def _frozen(pid: int) -> Iterator[None]:
    """SIGSTOP for the block, SIGCONT after whatever happens."""
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def check_quorum(api: Api) -> list[Outcome]:
    """W = 2 met (201, two nodes applied it) in a region of two or more nodes, and not met (503) while every
    other node of the region is frozen (SIGSTOP; any one left running would confirm): the refused write is not
    lost, the thawed nodes apply it."""
    region = next((r for r, reg in api.hive.regions.items() if len(reg.nodes) >= 2), None)
    if region is None or api.hive.quorum_writes < 2:
        why = f"W={api.hive.quorum_writes}; regions of {[len(r.nodes) for r in api.hive.regions.values()]} nodes"
        return [Outcome("W=2 met and not met", False, f"needs W >= 2 and a region of 2 nodes: {why}")]
    writer, *others = api.region_nodes(region)
    started = time.monotonic()
    met = api.store(writer, f"quorum{api.run} met in {region}")
    took = (time.monotonic() - started) * 1000
    acks = met.json().get("quorum_acks", 0) if met.status_code == 201 else 0
    out = [Outcome(f"W=2 met in {region} (writer {writer})", met.status_code == 201 and acks >= 2,
                   f"{met.status_code}, quorum_acks {acks}, {took:.0f} ms")]
    pids = {name: _pid_of(api.hive.nodes[name]) for name in others}
    running = [pid for pid in pids.values() if pid is not None]
    if len(running) < len(others):
        gone = [name for name, pid in pids.items() if pid is None]
        return [*out, Outcome("W=2 not met", False, f"{gone} not running as recorded (start with --serve)")]
    with ExitStack() as frozen:
        for pid in running:
            frozen.enter_context(_frozen(pid))
        started = time.monotonic()
        refused = api.store(writer, f"quorum{api.run} not met in {region}")
        took = (time.monotonic() - started) * 1000
    body = refused.json() if refused.headers.get("content-type", "").startswith("application/json") else {}
    ok = refused.status_code == 503 and body.get("error") == "quorum_not_met"
    out.append(Outcome(f"W=2 not met in {region} ({','.join(others)} frozen): 503", ok,
                       f"{refused.status_code} {body if not ok else {k: body[k] for k in ('got', 'needed')}}, "
                       f"{took:.0f} ms"))
    late = [name for name in others if not api.caught_up(name, refused.headers.get(CLOCK, ""), seconds=60)]
    out.append(Outcome("the refused write reaches the thawed nodes after SIGCONT", not late,
                       "applied" if not late else f"not in 60 s: {late}"))
    return out


def _signal_wan(api: Api, signum: int, state: str) -> bool:
    wan = api.hive.wan
    assert wan is not None
    os.kill(wan.pid, signum)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if Path(wan.state_file).read_text().strip() == state:
            return True
        time.sleep(0.05)
    return False


def check_partition(api: Api, *, cut_s: float = 3.0) -> list[Outcome]:
    """Every WAN link cut (SIGUSR1 to the proxy): the first region keeps serving regional writes and reads and
    the others do not see them; another region writes too; after the heal (SIGUSR2) every node has both writes,
    and all converge."""
    wan = api.hive.wan
    if wan is None:
        return [Outcome("partition and heal", False, "no WAN proxy: start the hive with --wan-delay-ms")]
    first, second = list(api.hive.regions)[:2]
    here, there = api.region_nodes(first)[0], api.region_nodes(second)[0]
    token = f"cut{api.run}".replace("-", "")
    if not _signal_wan(api, signal.SIGUSR1, "cut"):
        return [Outcome("partition: cut", False, "the proxy did not report the cut")]
    try:
        started = time.monotonic()
        ours = api.store(here, f"{token} {first} while cut off")
        took = (time.monotonic() - started) * 1000
        serving = ours.status_code == 201 and api.recalled(here, token, ours.json()["id"])
        theirs = api.store(there, f"{token} {second} while cut off")
        time.sleep(cut_s)
        leaked = serving and api.recalled(there, token, ours.json()["id"])
    finally:
        healed = _signal_wan(api, signal.SIGUSR2, "open")
    out = [Outcome(f"partition: cut {first} serves a regional write and reads it back", serving,
                   f"{ours.status_code} in {took:.0f} ms"),
           Outcome(f"partition: {second} does not see it while cut, and writes too", not leaked and
                   theirs.status_code == 201, f"seen: {leaked}, {second} write {theirs.status_code}")]
    if not (healed and ours.status_code == 201 and theirs.status_code == 201):
        return [*out, Outcome("partition: heal", False, f"healed: {healed}")]
    both = _merge(ours.headers[CLOCK], theirs.headers[CLOCK])
    started = time.monotonic()
    late = [node for node in api.hive.nodes if not api.caught_up(node, both, seconds=90)]
    out.append(Outcome("partition: after the heal every node has both sides' writes", not late,
                       f"{time.monotonic() - started:.1f} s" if not late else f"behind after 90 s: {late}"))
    out.append(check_convergence(api, label="after the heal"))
    return out
