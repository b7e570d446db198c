"""``python -m infra.cluster.proof DIR``: prove a live hive (issue #16, item 6) and say so line by line.

DIR is the launcher's (``python -m infra.cluster.local DIR --regions 3 --ai-nodes-per-region 5 --tls
--wan-delay-ms 50 --serve``); its ``hive.json`` says where everything is. One line per check, ``PASS`` or
``FAIL`` with its figure, then the total; exit 0 only when every check passed. The checks:

- a write in each region is recalled in every other region (each ordered pair);
- every node's read model hashes the same (``GET /api/v1/status?hash=1``) at the same log position;
- W = 2 is met (201) in a region of two nodes, and not met (503 ``quorum_not_met``) while the region's other
  node is frozen (SIGSTOP; SIGCONT after), which then applies the refused write;
- partition and heal through the WAN proxy (SIGUSR1 / SIGUSR2): a cut region keeps serving writes and reads,
  the others do not see them until the heal, after which every node converges;
- the three encryption legs, positive and negative (:mod:`infra.cluster.proof_tls`).

It leaves the hive as it found it (thawed, healed; the servers it starts to knock on the routes and gateways are
stopped) and writes only memories titled with its run id, so it can run again on the same hive.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path

from infra.cluster.hive_file import HiveFile
from infra.cluster.proof_api import Api, Outcome, check_convergence, check_pairs, check_partition, check_quorum
from infra.cluster.proof_tls import Certs, check_http_tls, check_nats_client_tls, check_routes_and_gateways

__all__ = ["GROUPS", "main", "run_proof"]


def _tls_checks(hive: HiveFile, work: Path, run: str) -> list[Outcome]:
    if hive.tls is None:
        return [Outcome("encryption legs", False, "the hive runs without TLS: start it with --tls")]
    certs = Certs(hive, work / "certs")
    return [*check_http_tls(hive, certs), *check_nats_client_tls(hive, certs),
            *check_routes_and_gateways(hive, certs, work, run)]


#: The groups of checks, in the order they run (``--checks`` picks some).
GROUPS = ("pairs", "convergence", "quorum", "partition", "tls")


def run_proof(directory: Path, *, checks: Iterable[str] = GROUPS, say: Callable[[str], None] = print
              ) -> list[Outcome]:
    """Run the ``checks`` groups against the hive described in ``directory``, saying each outcome as it comes."""
    hive = HiveFile.read(directory)
    run = uuid.uuid4().hex[:8]
    work = directory / f"proof-{run}"
    work.mkdir()
    api = Api(hive, run)
    outcomes: list[Outcome] = []
    groups: dict[str, Callable[[], list[Outcome]]] = {
        "pairs": lambda: check_pairs(api), "convergence": lambda: [check_convergence(api)],
        "quorum": lambda: check_quorum(api), "partition": lambda: check_partition(api),
        "tls": lambda: _tls_checks(hive, work, run)}
    wanted = set(checks)
    try:
        for name in (g for g in GROUPS if g in wanted):
            try:
                found = groups[name]()
            except Exception as exc:  # a node that stops answering fails its group; the other groups still run
                found = [Outcome(name, False, f"stopped by {exc!r}"[:300])]
            for outcome in found:
                say(f"{'PASS' if outcome.ok else 'FAIL'}  {outcome.name}: {outcome.figure}")
                outcomes.append(outcome)
    finally:
        api.close()
    return outcomes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.cluster.proof", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dir", type=Path, help="the hive launcher's directory (holds hive.json)")
    parser.add_argument("--checks", default=",".join(GROUPS), metavar="A,B",
                        help=f"only these groups of checks (default all: {','.join(GROUPS)})")
    args = parser.parse_args(argv)
    checks = [c.strip() for c in args.checks.split(",") if c.strip()]
    if not checks or set(checks) - set(GROUPS):
        parser.error(f"--checks: choose among {','.join(GROUPS)}")
    # The refused TLS connections make asyncio's SSL transport warn once each: expected here, so not printed.
    logging.getLogger("asyncio").setLevel(logging.ERROR)
    started = time.monotonic()
    outcomes = run_proof(args.dir, checks=checks, say=lambda line: print(line, flush=True))
    passed = sum(o.ok for o in outcomes)
    print(f"total: {passed}/{len(outcomes)} checks passed in {time.monotonic() - started:.0f} s "
          f"on {len(HiveFile.read(args.dir).nodes)} nodes", flush=True)
    return 0 if outcomes and passed == len(outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
