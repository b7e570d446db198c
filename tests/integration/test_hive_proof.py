"""The proof (#16 item 6) in CI: the launcher starts a small hive (three regions of one nats-server each, two
ai-memory nodes in the first region for W = 2 and one in each other, mutual TLS, 20 ms WAN links through the
proxy) and ``python -m infra.cluster.proof DIR`` must print only PASS lines and exit 0. Run again with the WAN
proxy left out of its hive description, it must say FAIL and exit 1: the proof can fail. Bounded in time
(about 1.5 min on two busy cores).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from infra.cluster.hive_file import HIVE_FILE, HiveFile
from infra.cluster.process import listen_port
from infra.tls import TlsFiles, client_context

pytestmark = [pytest.mark.nats, pytest.mark.slow]
CHILD_ENV = {**os.environ, "AI_MEMORY_EMBEDDER": "off", "AI_MEMORY_AGENT_ID": ""}


def _healthy(hive: HiveFile) -> bool:
    assert hive.tls is not None
    operator = TlsFiles(Path(hive.tls.operator_cert), Path(hive.tls.operator_key), Path(hive.tls.ca))
    try:
        with httpx.Client(verify=client_context(operator), timeout=5) as http:
            return all(http.get(f"{n.url}/api/v1/health").status_code == 200 for n in hive.nodes.values())
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def hive_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    from tests.conftest import _require_nats_server

    _require_nats_server()
    root = tmp_path_factory.mktemp("hive")
    launcher = subprocess.Popen([sys.executable, "-m", "infra.cluster.local", str(root), "--regions", "3",
                                 "--nodes", "1", "--ai-nodes-per-region", "2,1,1", "--tls", "--wan-delay-ms", "20",
                                 "--serve", "--port", str(listen_port())],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=CHILD_ENV)
    try:
        deadline = time.monotonic() + 120
        while not ((root / HIVE_FILE).exists() and _healthy(HiveFile.read(root))):
            assert launcher.poll() is None, launcher.stdout.read().decode() if launcher.stdout else ""
            assert time.monotonic() < deadline, "the hive did not come up in 120 s"
            time.sleep(0.5)
        yield root
    finally:
        launcher.terminate()
        launcher.wait(60)


def _prove(directory: Path, *options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "infra.cluster.proof", str(directory), *options],
                          capture_output=True, text=True, timeout=400, env=CHILD_ENV)


def test_the_proof_passes_on_a_live_hive(hive_dir: Path) -> None:
    done = _prove(hive_dir)
    lines = done.stdout.splitlines()
    assert done.returncode == 0, done.stdout + done.stderr
    checks = [line for line in lines if line.startswith(("PASS", "FAIL"))]
    assert len(checks) == 25 and all(line.startswith("PASS") for line in checks), done.stdout
    assert lines[-1].startswith("total: 25/25 checks passed"), done.stdout
    for leg in ("agent -> node HTTPS", "node -> NATS client TLS", "NATS route", "NATS gateway"):
        assert any(leg in line and "refused" in line for line in checks), leg  # each leg's negative ran
        assert any(leg in line and ("admitted" in line or "joins" in line) for line in checks), leg


def test_the_proof_fails_what_it_cannot_prove(hive_dir: Path, tmp_path: Path) -> None:
    raw = json.loads((hive_dir / HIVE_FILE).read_text())
    (tmp_path / HIVE_FILE).write_text(json.dumps({**raw, "wan": None}))  # the same hive, its WAN proxy unnamed
    done = _prove(tmp_path, "--checks", "convergence,partition")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "FAIL  partition and heal: no WAN proxy" in done.stdout
    assert "PASS  convergence" in done.stdout  # the other check still ran, against the live hive
    assert done.stdout.splitlines()[-1].startswith("total: 1/2 checks passed"), done.stdout
