"""``ai-memory certs DIR --name n1 --name n2 …``: a dev CA and certificates for a local cluster (server and
client use, for loopback), and ``DIR/allowlist`` listing every certificate in DIR for ``serve --mtls-allowlist``.

The CA in DIR is reused when present, so certificates made later are trusted by the same ``--mtls-ca`` and
``--log-ca``; the allowlist is rewritten from all of DIR's certificates each time.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from infra.tls import fingerprint, make_allowlist, make_node_cert, open_or_make_ca
from producers.cli.spec import VerbSpec, emit
from producers.errors import ValidationError
from producers.runtime.node import NodeConfig

__all__ = ["VERBS", "make_dev_certs"]

_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")


def make_dev_certs(directory: Path, names: list[str], hosts: tuple[str, ...] = ("127.0.0.1", "localhost")
                   ) -> dict[str, Any]:
    """Certificates ``names`` under ``directory``'s CA (made if missing), and the allowlist of all of them."""
    for name in names:
        if not name or not set(name) <= _NAME_CHARS or name in ("ca", "allowlist"):
            raise ValidationError(f"certificate name {name!r}: letters, digits, '-', '_' and '.' only")
    ca = open_or_make_ca(directory)
    made = {name: make_node_cert(directory, name, ca, hosts=hosts) for name in names}
    certs = [p for p in directory.glob("*.pem") if p != ca.cert_path]
    make_allowlist(directory / "allowlist", certs)
    return {"ca": str(ca.cert_path), "allowlist": str(directory / "allowlist"), "listed": len(certs),
            "certificates": {name: {"cert": str(f.cert), "key": str(f.key), "sha256": fingerprint(f.cert.read_bytes())}
                             for name, f in made.items()}}


async def _certs(args: argparse.Namespace, _config: NodeConfig) -> int:
    out = make_dev_certs(Path(args.dir).expanduser(), args.name, tuple(args.host or ("127.0.0.1", "localhost")))
    if args.json:
        emit(out)
        return 0
    print(f"CA {out['ca']}; allowlist {out['allowlist']} ({out['listed']} certificates)")
    for name, files in out["certificates"].items():
        print(f"{name}: {files['cert']} {files['key']} sha256:{files['sha256']}")
    return 0


def _args(p: argparse.ArgumentParser) -> None:
    p.add_argument("dir", help="directory for ca.pem/ca.key, NAME.pem/NAME.key and allowlist")
    p.add_argument("--name", action="append", default=[], help="a certificate to make (repeatable)")
    p.add_argument("--host", action="append", default=[],
                   help="a host name or IP the certificates are valid for (repeatable; default 127.0.0.1, localhost)")


VERBS = [VerbSpec("certs", "make a dev CA, node/client certificates and a fingerprint allowlist (mTLS)",
                  _args, _certs)]
