"""``python -m infra.cluster.local DIR [--nodes N] [--tls] [--serve]``: a local N-node NATS JetStream cluster on
loopback for a T3 walkthrough, in the foreground until Ctrl-C (or SIGTERM), data and certificates under DIR.
With ``--regions R [--ai-nodes-per-region K] [--wan-delay-ms D]``, a hive of R such clusters joined by gateways
instead (T5): see :func:`run_hive`.

It prints the log URL and, for each ai-memory node, the ``ai-memory serve`` command that joins it (its own
data dir and port, replicas, quorum); with ``--serve`` it also runs those commands and stops them on exit.
With ``--tls`` everything is mutual TLS under the cluster's dev CA: each node's certificate is its NATS client
certificate and its HTTPS server certificate, and the HTTP API admits only the certificates on
``DIR/http-allowlist`` (the nodes' and an ``operator`` certificate for curl).
The nodes' data dirs are prepared so they trust each other: each gets its node id and signing key, and every
node's public key is copied into every other node's ``keys/``.
"""

from __future__ import annotations

import argparse
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from infra.cluster.hive_file import HiveFile, HiveNode, HiveRegion, HiveTls, WanLink
from infra.cluster.nats_server import NatsCluster, NatsServer
from infra.cluster.supercluster import NatsSupercluster
from infra.tls import make_allowlist
from schemas import load_or_create_node_key

__all__ = ["OPERATOR", "Members", "build_parser", "curl_hint", "describe_hive", "hive_commands", "http_allowlist",
           "main", "nodes_per_region", "prepare_nodes", "region_names", "run_hive", "serve_commands", "start_nodes",
           "stop_nodes", "supervise"]

#: The client certificate made for a person at the terminal (curl), listed on the HTTP allowlist.
OPERATOR = "operator"


def prepare_nodes(root: Path, nodes: int) -> list[Path]:
    """Data dirs ``node1..nodeN`` with their ids and keys, each trusting all the others' keys."""
    dirs = [root / f"node{i + 1}" for i in range(nodes)]
    for i, data in enumerate(dirs):
        data.mkdir(parents=True, exist_ok=True)
        (data / "node_id").write_text(f"node{i + 1}\n")
        load_or_create_node_key(data / "keys", f"node{i + 1}")
    for data in dirs:
        for j, other in enumerate(dirs):
            pub = other / "keys" / f"node{j + 1}.pub"
            if other != data:
                (data / "keys" / pub.name).write_bytes(pub.read_bytes())
    return dirs


def shared_read_model(root: Path) -> list[str]:
    """The ``serve`` options that put the nodes of this host on one SQLite read model (``root/readmodel.db``):
    each event is then applied once on the host, by whichever node reads it first, not once per node."""
    return ["--read-model", str(root / "readmodel.db")]


def http_allowlist(cluster: NatsCluster, root: Path, *, nodes: int) -> Path:
    """``root/http-allowlist``: the fingerprints of the nodes' certificates and of ``operator`` (for curl)."""
    names = [f"node{i + 1}" for i in range(nodes)] + [OPERATOR]
    path = root / "http-allowlist"
    make_allowlist(path, [cluster.client_files(name).cert for name in names])
    return path


def serve_commands(cluster: NatsCluster, root: Path, *, nodes: int, quorum: int, port: int = 9077,
                   stream: str = "ai-memory", log_url: str | None = None, first: int = 1,
                   everyone: int | None = None, extra: Sequence[str] = ()) -> list[str]:
    """One ``ai-memory serve`` command per node (pure apart from making certificates and the allowlist).

    For one region of a hive: ``log_url`` is the region's, the nodes are ``node<first>`` onwards (the port of
    nodeN is ``port + N - 1``) and the allowlist lists ``everyone`` nodes of the hive; ``cluster`` makes the
    certificates (one region's cluster for every region: they share the CA) and sets the replicas. ``extra``
    is appended to every command.
    """
    commands = []
    allowlist = http_allowlist(cluster, root, nodes=everyone or nodes) if cluster.ca is not None else None
    for i in range(first - 1, first - 1 + nodes):
        args = ["ai-memory", "serve", "--data-dir", str(root / f"node{i + 1}"), "--port", str(port + i),
                "--log", log_url or f"{cluster.url}/{stream}", "--replicas", str(min(3, len(cluster.nodes))),
                "--quorum-writes", str(quorum), "--cluster-size", str(nodes)]
        if cluster.ca is not None and allowlist is not None:
            files = cluster.client_files(f"node{i + 1}")
            args += ["--log-cert", str(files.cert), "--log-key", str(files.key), "--log-ca", str(files.ca),
                     "--tls-cert", str(files.cert), "--tls-key", str(files.key),
                     "--mtls-allowlist", str(allowlist), "--mtls-ca", str(files.ca)]
        commands.append(shlex.join([*args, *extra]))
    return commands


def curl_hint(cluster: NatsCluster, *, port: int = 9077) -> str:
    """How to reach a node's HTTPS API with the operator's certificate."""
    files = cluster.client_files(OPERATOR)
    return (f"curl --cacert {files.ca} --cert {files.cert} --key {files.key} "
            f"https://127.0.0.1:{port}/api/v1/health")


def _executable(command: str) -> list[str]:
    """The printed command with ``ai-memory`` resolved to this environment's script."""
    argv = shlex.split(command)
    script = Path(sys.executable).with_name("ai-memory")
    return [str(script) if script.exists() else argv[0], *argv[1:]]


def start_nodes(commands: list[str], root: Path, *, first: int = 1) -> list[subprocess.Popen[bytes]]:
    """Run the serve commands, each logging to ``root/nodeN.log`` (N counted from ``first``)."""
    procs = []
    for i, command in enumerate(commands, start=first):
        with (root / f"node{i}.log").open("ab") as out:
            procs.append(subprocess.Popen(_executable(command), stdout=out, stderr=subprocess.STDOUT))
    return procs


def stop_nodes(procs: list[subprocess.Popen[bytes]], *, timeout: float = 10.0) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Members:
    """What the launcher runs: the nats-servers and the ai-memory nodes, each of which may die on its own (a
    crash, or kill -9 in a fault drill) and be started again."""

    def __init__(self, servers: list[NatsServer], procs: list[subprocess.Popen[bytes]], commands: list[str],
                 root: Path) -> None:
        self.servers = servers
        self.procs = procs
        self.commands = commands
        self.root = root

    def dead(self) -> list[str]:
        """Names of the members that are not running: ``nats n2``, ``ai-memory node1``."""
        names = [f"nats {s.store_dir.name}" for s in self.servers if not s.running]
        return names + [f"ai-memory node{i + 1}" for i, p in enumerate(self.procs) if p.poll() is not None]

    def restart(self, name: str) -> None:
        kind, which = name.split(" ", 1)
        if kind == "nats":
            next(s for s in self.servers if s.store_dir.name == which).start()
            return
        i = int(which.removeprefix("node")) - 1
        self.procs[i] = start_nodes([self.commands[i]], self.root, first=i + 1)[0]


def supervise(members: Members, *, restart_after: float | None, poll: float = 0.5,
              until: Callable[[], bool] = lambda: False) -> None:
    """Watch the members until Ctrl-C (or ``until()``): say when one exits, and restart it after
    ``restart_after`` seconds when given. The others keep running either way."""
    down_since: dict[str, float] = {}
    while not until():
        now = time.monotonic()
        dead = members.dead()
        for name in dead:
            if name not in down_since:
                down_since[name] = now
                then = f"restarting in {restart_after:g}s" if restart_after is not None else "left down"
                print(f"{name} exited; the others keep running ({then})", flush=True)
            elif restart_after is not None and now - down_since[name] >= restart_after:
                try:
                    members.restart(name)
                except Exception as exc:  # a failed start is reported and tried again later
                    print(f"{name} did not restart: {exc}", flush=True)
                    down_since[name] = now
                    continue
                print(f"{name} restarted", flush=True)
        for name in set(down_since) - set(dead):
            down_since.pop(name)
        time.sleep(poll)


# ---- a hive of regions (T5, issue #16) ------------------------------------------------------------------
# ``--regions N``: a NATS supercluster (``--nodes`` servers per region, gateways between regions, optionally
# through WAN proxies) and ``--ai-nodes-per-region`` ai-memory nodes in each region, each on its region's log
# (:mod:`infra.log.regional`). Nodes are numbered across the hive (region 1 has node1..nodeK, region 2 the next
# K, ...), their HTTP ports follow ``--port`` in that order, and every node trusts every other's key: a hive is
# one trust domain. Quorum W counts the region's nodes (``--cluster-size`` is the region's node count).

def region_names(count: int, names: str | None) -> list[str]:
    """``--region-names us,eu,ap``, else ``r1..rN``; the count must agree when both are given."""
    chosen = [n.strip() for n in names.split(",") if n.strip()] if names else [f"r{i + 1}" for i in range(count)]
    if len(chosen) != count:
        msg = f"--regions {count} but {len(chosen)} names in --region-names"
        raise SystemExit(msg)
    return chosen


def nodes_per_region(text: str, regions: int) -> list[int]:
    """``--ai-nodes-per-region``: one count for every region (``5``), or one per region (``2,1,1``)."""
    try:
        counts = [int(part) for part in text.split(",")]
    except ValueError:
        counts = []
    if len(counts) == 1:
        counts = counts * regions
    if len(counts) != regions or min(counts) < 1:
        msg = f"--ai-nodes-per-region {text!r}: one count of at least 1, or {regions} comma-separated counts"
        raise SystemExit(msg)
    return counts


def hive_commands(hive: NatsSupercluster, root: Path, *, per_region: int | list[int], quorum: int, port: int,
                  quorum_regions: int = 1) -> dict[str, list[str]]:
    """Each region's ``ai-memory serve`` commands, in node order (``per_region``: a count for every region, or
    one per region)."""
    certs = hive.regions[hive.names[0]]  # every region's cluster signs with the hive's CA: one makes them all
    counts = per_region if isinstance(per_region, list) else [per_region] * len(hive.names)
    extra = ["--quorum-regions", str(quorum_regions)] if quorum_regions > 1 else []
    firsts = [sum(counts[:k]) + 1 for k in range(len(counts))]
    return {region: serve_commands(certs, root, nodes=count, quorum=quorum, port=port, extra=extra,
                                   log_url=hive.log_url(region), first=first, everyone=sum(counts))
            for region, count, first in zip(hive.names, counts, firsts, strict=True)}


def describe_hive(hive: NatsSupercluster, root: Path, commands: dict[str, list[str]], *, port: int, quorum: int,
                  procs: list[subprocess.Popen[bytes]]) -> HiveFile:
    """What :func:`run_hive` started, as ``DIR/hive.json`` holds it (``procs``: the nodes', in node order, or
    none without ``--serve``)."""
    scheme = "https" if hive.ca is not None else "http"
    regions: dict[str, HiveRegion] = {}
    nodes: dict[str, HiveNode] = {}
    number = 1
    for region, lines in commands.items():
        names = [f"node{number + i}" for i in range(len(lines))]
        cluster = hive.regions[region]
        regions[region] = HiveRegion(nats_url=cluster.url, cluster_ports=cluster.cluster_ports,
                                     gateway_ports=hive.gateway_ports[region], nodes=names)
        for name in names:
            pid = procs[number - 1].pid if procs else None
            nodes[name] = HiveNode(region=region, url=f"{scheme}://127.0.0.1:{port + number - 1}",
                                   data_dir=str(root / name), pid=pid)
            number += 1
    wan = None
    if hive.proxy is not None and hive.proxy.pid is not None:
        wan = WanLink(pid=hive.proxy.pid, state_file=str(hive.proxy.state_file), delay_ms=hive.proxy.delay_ms)
    tls = None
    if hive.ca is not None:
        operator = hive.client_files(OPERATOR)
        tls = HiveTls(ca=str(hive.ca.cert_path), ca_key=str(hive.ca.key_path), operator_cert=str(operator.cert),
                      operator_key=str(operator.key), allowlist=str(root / "http-allowlist"))
    return HiveFile(regions=regions, nodes=nodes, quorum_writes=quorum, wan=wan, tls=tls)


def _describe(hive: NatsSupercluster, commands: dict[str, list[str]], *, port: int, tls: bool) -> None:
    scheme = "https" if tls else "http"
    number = 1
    for region, lines in commands.items():
        print(f"region {region}: NATS {hive.regions[region].url}", flush=True)
        for line in lines:
            print(f"  node{number} {scheme}://127.0.0.1:{port + number - 1}: {line}", flush=True)
            number += 1
    if hive.proxy is not None and hive.proxy.pid is not None:
        pid = hive.proxy.pid
        print(f"WAN links of {hive.proxy.delay_ms:g} ms between regions through proxy pid {pid}: "
              f"kill -USR1 {pid} cuts every link, kill -USR2 {pid} heals them", flush=True)
    if tls:
        print(curl_hint(hive.regions[hive.names[0]], port=port), flush=True)


def run_hive(args: argparse.Namespace) -> int:
    """Start the hive, print how to reach each region's nodes, run them with ``--serve``; until Ctrl-C."""
    names = region_names(args.regions, args.region_names)
    hive = NatsSupercluster(store_dir=args.dir / "nats", regions=names, servers_per_region=args.nodes,
                            tls=args.tls, wan_delay_ms=args.wan_delay_ms)
    hive.start()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        counts = nodes_per_region(args.ai_nodes_per_region, len(names))
        prepare_nodes(args.dir, sum(counts))
        commands = hive_commands(hive, args.dir, per_region=counts, quorum=args.quorum,
                                 port=args.port, quorum_regions=args.quorum_regions)
        _describe(hive, commands, port=args.port, tls=args.tls)
        everything = [line for lines in commands.values() for line in lines]
        if args.serve:
            procs = start_nodes(everything, args.dir)
        path = describe_hive(hive, args.dir, commands, port=args.port, quorum=args.quorum, procs=procs).write(args.dir)
        print(f"hive description: {path}", flush=True)
        servers = [server for cluster in hive.regions.values() for server in cluster.nodes]
        supervise(Members(servers, procs, everything, args.dir), restart_after=args.restart)
    except KeyboardInterrupt:
        pass
    finally:
        stop_nodes(procs)
        hive.stop()
    return 0


def build_parser(*, prog: str = "python -m infra.cluster.local") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__)
    parser.add_argument("dir", type=Path)
    parser.add_argument("--nodes", type=int, default=3, help="nats-servers (default 3)")
    parser.add_argument("--ai-nodes", type=int, default=None, help="ai-memory nodes to print commands for")
    parser.add_argument("--quorum", type=int, default=2, help="W for the printed commands (default 2)")
    parser.add_argument("--tls", action="store_true",
                        help="mutual TLS on NATS client connections and routes, and HTTPS with a client-certificate "
                             "allowlist on the ai-memory nodes")
    parser.add_argument("--port", type=int, default=9077, help="HTTP port of node1; nodeN gets port + N - 1")
    parser.add_argument("--serve", action="store_true", help="also run the ai-memory nodes (logs in DIR/nodeN.log)")
    parser.add_argument("--shared-read-model", action="store_true",
                        help="the ai-memory nodes share one SQLite read model (DIR/readmodel.db): each event is "
                             "applied once on this host, not once per node (each node keeps its own HNSW index)")
    parser.add_argument("--regions", type=int, default=0, metavar="N",
                        help="start a hive of N regions instead of one cluster: a NATS supercluster of N clusters "
                             "(--nodes servers each) joined by gateways, each region's nodes on its own stream")
    parser.add_argument("--region-names", default=None, metavar="A,B,...", help="region names (default r1..rN)")
    parser.add_argument("--ai-nodes-per-region", default="1", metavar="K[,K...]",
                        help="ai-memory nodes per region with --regions (default 1), or one count per region "
                             "(2,1,1); W counts the region's nodes")
    parser.add_argument("--wan-delay-ms", type=float, default=None, metavar="MS",
                        help="with --regions: every gateway link through a proxy adding MS of round trip, which "
                             "cuts and heals every link between regions on SIGUSR1 / SIGUSR2")
    parser.add_argument("--quorum-regions", type=int, default=1, metavar="K",
                        help="with --regions: a write also waits until K regions applied it (default 1)")
    parser.add_argument("--restart", type=float, default=None, metavar="SECONDS",
                        help="restart a member (nats-server or ai-memory node) SECONDS after it exits; without it a "
                             "dead member stays down (a fault drill) and the rest keep running")
    return parser


def main(argv: list[str] | None = None, *, prog: str = "python -m infra.cluster.local") -> int:
    args = build_parser(prog=prog).parse_args(argv)
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # stop the servers with us, never leave them
    if args.regions:
        return run_hive(args)
    cluster = NatsCluster(store_dir=args.dir / "nats", n=args.nodes, tls=args.tls)
    cluster.start()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        print(f"NATS cluster of {args.nodes}: {cluster.url}", flush=True)
        prepare_nodes(args.dir, args.ai_nodes or args.nodes)
        commands = serve_commands(cluster, args.dir, nodes=args.ai_nodes or args.nodes, quorum=args.quorum,
                                  port=args.port, extra=shared_read_model(args.dir) if args.shared_read_model else ())
        for line in commands:
            print(line, flush=True)
        if args.tls:
            print(curl_hint(cluster, port=args.port), flush=True)
        if args.serve:
            procs = start_nodes(commands, args.dir)
        supervise(Members(cluster.nodes, procs, commands, args.dir), restart_after=args.restart)
    except KeyboardInterrupt:
        pass
    finally:
        stop_nodes(procs)
        cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
