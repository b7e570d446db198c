"""``ai-memory cluster status``: this node's view of the cluster — the stream's leader and replicas, the log's
end, how far this node's projectors are behind it, and the clock each peer last confirmed."""

from __future__ import annotations

import argparse
import asyncio

from producers.cli.spec import VerbSpec, emit, open_node
from producers.runtime.node import NodeConfig
from producers.runtime.status import cluster_status
from projectors import Confirmer

__all__ = ["VERBS"]


async def _status(args: argparse.Namespace, config: NodeConfig) -> int:
    async with open_node(config) as node:
        # Peers repeat their confirmation every heartbeat: listen a little longer than one.
        await asyncio.sleep(args.listen_secs)
        status = await cluster_status(node)
    if args.json:
        emit(status)
        return 0
    stream = status["stream"] or {}
    print(f"node {status['node_id']} on {status['log']}")
    if stream:
        replicas = ", ".join(f"{r['name']} ({'current' if r['current'] else 'behind'}, lag {r['lag']})"
                             for r in stream["replicas"])
        print(f"stream leader {stream['leader']}; replicas {replicas or 'none'}")
    print(f"log end {status['end_offsets']}; projector lag {status['projector_lag']}")
    print(f"quorum W={status['quorum']['writes']} of N={status['quorum']['cluster_size']}")
    for peer, seen in status["peers"].items():
        print(f"peer {peer}: confirmed {seen['clock']} (behind {seen['lag']})")
    if not status["peers"]:
        print("no peer confirmations heard")
    return 0


def _args(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=["status", "up"],
                   help="status: this node's view; up DIR: start a local cluster of nats-servers (and with "
                        "--serve its ai-memory nodes) for trying T3, see `ai-memory cluster up --help`")
    p.add_argument("--listen-secs", type=float, default=Confirmer.HEARTBEAT * 1.5,
                   help="how long to listen for peers' confirmations (default 1.5)")


VERBS = [VerbSpec("cluster", "cluster status: stream leader and replicas, projector lag, peers' confirmed clocks; "
                             "cluster up DIR: a local cluster",
                  _args, _status)]
