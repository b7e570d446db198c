"""What a data directory remembers about the node it belongs to: its log, stream, replicas, read model and
log TLS files (``<data-dir>/node.json``).

Why: a cluster node's directory is useless without the log it was built from, and a verb run on it without
``--log`` used to open an empty embedded log beside it. The record is written by every successful open with the
settings that opened it, and every later verb takes from it what it was not told explicitly (an option or its
environment variable). The file is mode 0600: a read model URL may carry a database password.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from infra.tls import TlsFiles
from producers.errors import CommandError

if TYPE_CHECKING:
    from producers.runtime.node import NodeConfig

__all__ = ["RECORD_FILE", "NodeRecord", "RecordError"]

RECORD_FILE = "node.json"


class RecordError(CommandError):
    """The data directory's record cannot be read: say where, and what to do."""

    exit_code = 2


@dataclass(frozen=True)
class NodeRecord:
    log_url: str = ""
    stream: str = "ai-memory"
    replicas: int = 1
    read_model_url: str = ""
    log_cert: str = ""
    log_key: str = ""
    log_ca: str = ""

    @classmethod
    def of(cls, config: NodeConfig) -> NodeRecord:
        tls = config.log_tls
        return cls(log_url=config.log_url, stream=config.stream, replicas=config.replicas,
                   read_model_url=config.read_model_url,
                   log_cert=str(tls.cert) if tls else "", log_key=str(tls.key) if tls else "",
                   log_ca=str(tls.ca) if tls else "")

    @classmethod
    def load(cls, data_dir: Path) -> NodeRecord | None:
        path = data_dir / RECORD_FILE
        try:
            raw: Any = json.loads(path.read_text())
        except (FileNotFoundError, NotADirectoryError):
            return None  # no record yet; a data dir that is a file is refused when the node opens
        except (OSError, ValueError) as exc:
            raise RecordError(f"cannot read {path} ({exc}); fix or delete it, then pass --log and the other "
                              "options this node was started with") from exc
        if not isinstance(raw, dict):
            raise RecordError(f"{path} is not a JSON object; fix or delete it")
        known = {f.name for f in fields(cls)}
        try:
            return cls(**{k: v for k, v in raw.items() if k in known})
        except TypeError as exc:
            raise RecordError(f"{path}: {exc}") from exc

    def save(self, data_dir: Path) -> None:
        path = data_dir / RECORD_FILE
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(asdict(self), f, indent=2, sort_keys=True)
            f.write("\n")
        os.replace(tmp, path)

    def fill(self, config: NodeConfig, explicit: frozenset[str]) -> NodeConfig:
        """``config`` with every setting not named in ``explicit`` taken from this record."""
        changes: dict[str, Any] = {}
        for name in ("log_url", "stream", "replicas", "read_model_url"):
            if name not in explicit:
                changes[name] = getattr(self, name)
        if "log_tls" not in explicit and self.log_cert:
            changes["log_tls"] = TlsFiles(Path(self.log_cert), Path(self.log_key), Path(self.log_ca))
        return replace(config, **changes)
