"""The hive launcher behind ``python -m infra.cluster.local DIR --regions N``: a NATS supercluster (``--nodes``
servers per region, gateways between regions, optionally through WAN proxies) and ``--ai-nodes-per-region``
ai-memory nodes in each region, each on its region's log (:mod:`infra.log.regional`).

Nodes are numbered across the hive (region 1 has node1..nodeK, region 2 the next K, ...), their HTTP ports
follow ``--port`` in that order, and every node trusts every other's key: a hive is one trust domain. Quorum W
counts the region's nodes (``--cluster-size`` is the region's node count).
"""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path

from infra.cluster.local import Members, curl_hint, prepare_nodes, serve_commands, start_nodes, stop_nodes, supervise
from infra.cluster.supercluster import NatsSupercluster

__all__ = ["hive_commands", "region_names", "run_hive"]


def region_names(count: int, names: str | None) -> list[str]:
    """``--region-names us,eu,ap``, else ``r1..rN``; the count must agree when both are given."""
    chosen = [n.strip() for n in names.split(",") if n.strip()] if names else [f"r{i + 1}" for i in range(count)]
    if len(chosen) != count:
        msg = f"--regions {count} but {len(chosen)} names in --region-names"
        raise SystemExit(msg)
    return chosen


def hive_commands(hive: NatsSupercluster, root: Path, *, per_region: int, quorum: int, port: int,
                  quorum_regions: int = 1) -> dict[str, list[str]]:
    """Each region's ``ai-memory serve`` commands, in node order."""
    certs = hive.regions[hive.names[0]]  # every region's cluster signs with the hive's CA: one makes them all
    everyone = per_region * len(hive.names)
    extra = ["--quorum-regions", str(quorum_regions)] if quorum_regions > 1 else []
    return {region: serve_commands(certs, root, nodes=per_region, quorum=quorum, port=port, extra=extra,
                                   log_url=hive.log_url(region), first=k * per_region + 1, everyone=everyone)
            for k, region in enumerate(hive.names)}


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
        prepare_nodes(args.dir, args.ai_nodes_per_region * len(names))
        commands = hive_commands(hive, args.dir, per_region=args.ai_nodes_per_region, quorum=args.quorum,
                                 port=args.port, quorum_regions=args.quorum_regions)
        _describe(hive, commands, port=args.port, tls=args.tls)
        everything = [line for lines in commands.values() for line in lines]
        if args.serve:
            procs = start_nodes(everything, args.dir)
        servers = [server for cluster in hive.regions.values() for server in cluster.nodes]
        supervise(Members(servers, procs, everything, args.dir), restart_after=args.restart)
    except KeyboardInterrupt:
        pass
    finally:
        stop_nodes(procs)
        hive.stop()
    return 0
