"""``python -m infra.cluster.local DIR [--nodes N] [--tls]``: a local N-node NATS JetStream cluster on loopback
for a T3 walkthrough, in the foreground until Ctrl-C (or SIGTERM), data and certificates under DIR.

It prints the log URL and, for each ai-memory node, the ``ai-memory serve`` command that joins it (its own
data dir and port, replicas, quorum; with ``--tls`` a client certificate signed by the cluster's dev CA).
The nodes' data dirs are prepared so they trust each other: each gets its node id and signing key, and every
node's public key is copied into every other node's ``keys/``.
"""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
import time
from pathlib import Path

from infra.cluster.nats_server import NatsCluster
from schemas import load_or_create_node_key

__all__ = ["main", "prepare_nodes", "serve_commands"]


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


def serve_commands(cluster: NatsCluster, root: Path, *, nodes: int, quorum: int, port: int = 9077) -> list[str]:
    """One ``ai-memory serve`` command per node (pure apart from making client certificates)."""
    commands = []
    for i in range(nodes):
        args = ["ai-memory", "serve", "--data-dir", str(root / f"node{i + 1}"), "--port", str(port + i),
                "--log", f"{cluster.url}/ai-memory", "--replicas", str(min(3, len(cluster.nodes))),
                "--quorum-writes", str(quorum), "--cluster-size", str(nodes)]
        if cluster.ca is not None:
            files = cluster.client_files(f"node{i + 1}")
            args += ["--log-cert", str(files.cert), "--log-key", str(files.key), "--log-ca", str(files.ca)]
        commands.append(shlex.join(args))
    return commands


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.cluster.local", description=__doc__)
    parser.add_argument("dir", type=Path)
    parser.add_argument("--nodes", type=int, default=3, help="nats-servers (default 3)")
    parser.add_argument("--ai-nodes", type=int, default=None, help="ai-memory nodes to print commands for")
    parser.add_argument("--quorum", type=int, default=2, help="W for the printed commands (default 2)")
    parser.add_argument("--tls", action="store_true", help="mutual TLS on client connections and routes")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # stop the servers with us, never leave them
    cluster = NatsCluster(store_dir=args.dir / "nats", n=args.nodes, tls=args.tls)
    cluster.start()
    try:
        print(f"NATS cluster of {args.nodes}: {cluster.url}", flush=True)
        prepare_nodes(args.dir, args.ai_nodes or args.nodes)
        for line in serve_commands(cluster, args.dir, nodes=args.ai_nodes or args.nodes, quorum=args.quorum):
            print(line, flush=True)
        while all(node.running for node in cluster.nodes):
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
