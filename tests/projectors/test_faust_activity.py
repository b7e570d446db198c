"""The faust-streaming example (projectors/examples/faust_activity.py) as a real worker against the broker.

faust cannot live in the project's venv (it pins click<8.4), so the test builds a venv of its own once,
``.venv-faust`` at the repository root, with the ``faust`` extra's packages; the worker imports only
``schemas`` from this repository (on PYTHONPATH).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import tomllib
import uuid
from pathlib import Path

import pytest

from infra.cluster import KafkaBroker
from infra.log.kafka import KafkaLog
from tests.factories import node_key, signed

REPO = Path(__file__).resolve().parents[2]
APP = REPO / "projectors" / "examples" / "faust_activity.py"
VENV = REPO / ".venv-faust"


def _faust_requirements() -> list[str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    return list(project["project"]["optional-dependencies"]["faust"])


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() not in ("", "0", "false"):
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def faust_python() -> Path:
    """The Python of a venv holding faust-streaming (built on first use, rebuilt when the extra changes)."""
    requirements = _faust_requirements()
    stamp = VENV / f".installed-{hashlib.sha256(' '.join(requirements).encode()).hexdigest()[:12]}"
    python = VENV / "bin" / "python"
    if not stamp.exists():
        try:
            subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True, capture_output=True,
                           timeout=120)
            subprocess.run([str(python), "-m", "pip", "install", "--quiet", *requirements], check=True,
                           capture_output=True, timeout=600)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            output = getattr(exc, "stderr", b"") or b""
            _unavailable(f"could not build the faust venv: {exc}: {output.decode(errors='replace')[-2000:]}")
        stamp.touch()
    return python


async def _counts(out: Path, want: dict[str, int], worker: subprocess.Popen[bytes], log_path: Path,
                  *, within: float = 90.0) -> dict[str, object]:
    """The worker's snapshot once its activity counts equal ``want``."""
    deadline = time.monotonic() + within
    snapshot: dict[str, object] = {}
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            pytest.fail(f"the faust worker exited with {worker.returncode}:\n{log_path.read_text()[-4000:]}")
        if out.exists():
            snapshot = json.loads(out.read_text())
            if snapshot["activity"] == want:
                return snapshot
        await asyncio.sleep(0.2)
    pytest.fail(f"counts never reached {want}; last snapshot {snapshot}:\n{log_path.read_text()[-4000:]}")


@pytest.mark.slow
async def test_faust_worker_counts_verified_events_per_namespace(faust_python: Path, kafka_broker: KafkaBroker,
                                                                 tmp_path: Path) -> None:
    trusted = node_key(tmp_path / "trusted")
    stranger = node_key(tmp_path / "stranger", key_id="stranger")
    topic = f"faust-{uuid.uuid4().hex[:8]}"
    log = await KafkaLog.connect(f"{kafka_broker.url}/{topic}")
    namespaces = ["team/a"] * 5 + ["team/b"] * 3 + ["global"] * 2
    await log.append([signed(trusted, namespace=ns) for ns in namespaces])
    await log.append([signed(stranger, namespace="team/b")])  # a key nobody trusts: must not count
    out, worker_log = tmp_path / "activity.json", tmp_path / "faust.log"
    env = {**os.environ, "PYTHONPATH": str(REPO), "AI_MEMORY_KAFKA": kafka_broker.url, "AI_MEMORY_TOPIC": topic,
           "AI_MEMORY_KEYS": str(tmp_path / "trusted" / "keys"), "AI_MEMORY_ACTIVITY_OUT": str(out),
           "AI_MEMORY_FAUST_APP": f"activity-{topic}", "AI_MEMORY_PARTITIONS": str(log.partitions)}
    with worker_log.open("wb") as sink:
        worker = subprocess.Popen([str(faust_python), str(APP), "worker", "-l", "warn"], cwd=tmp_path, env=env,
                                  stdout=sink, stderr=subprocess.STDOUT)
    try:
        first = await _counts(out, {"team/a": 5, "team/b": 3, "global": 2}, worker, worker_log)
        assert first["rejected"] == {"team/b": 1}
        await log.append([signed(trusted, namespace="team/c"), signed(trusted, namespace="team/a")])
        await _counts(out, {"team/a": 6, "team/b": 3, "global": 2, "team/c": 1}, worker, worker_log)
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
        await log.close()
