"""The HTTP API over TLS, optionally with client certificates checked against the original's fingerprint
allowlist (``serve --tls-cert/--tls-key [--mtls-allowlist FILE --mtls-ca FILE]``).

The allowlist decides who is admitted: a connection whose client certificate's SHA-256 (of its DER) is not
listed gets **403** ``{"error": "client certificate … is not on the allowlist"}`` on every request, however
good its CA signature. The check runs once per connection, right after the handshake, in uvicorn's HTTP
protocol: ASGI scopes carry no peer certificate, so the protocol swaps its app for a refusing one.

Where this differs from the original: it ignores CA signatures entirely, but Python's ``ssl`` module has no
verification callback, so a server that asks for client certificates must verify them against some trust
anchors. ``--mtls-ca`` names them (a PEM bundle: the cluster's CA from ``ai-memory certs``, or the listed peers'
self-signed certificates themselves). A certificate that does not chain to it, or no certificate at all, fails
the TLS handshake; one that chains but is not listed gets the 403.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

from infra.tls import TlsError, der_fingerprint, parse_allowlist
from producers.errors import AuthError, ValidationError, reply_for

__all__ = ["ClientCertificateRefused", "HttpTls", "allowlist_protocol", "peer_fingerprint", "uvicorn_tls_options"]

log = logging.getLogger("ai_memory.http.tls")


class ClientCertificateRefused(AuthError):
    """The client's certificate is valid TLS-wise but not on the fingerprint allowlist."""

    status = 403


@dataclass(frozen=True)
class HttpTls:
    """The server's certificate and key, and, for mutual TLS, the allowlist and the client trust anchors."""

    cert: Path
    key: Path
    allowlist: frozenset[str] | None = None
    client_ca: Path | None = None

    @classmethod
    def load(cls, cert: str | None, key: str | None, allowlist: str | None, client_ca: str | None
             ) -> HttpTls | None:
        """From the ``serve`` options; None without ``--tls-cert``. Raises ValidationError when inconsistent."""
        if not cert and not key:
            if allowlist or client_ca:
                raise ValidationError("--mtls-allowlist and --mtls-ca need --tls-cert and --tls-key")
            return None
        if not cert or not key:
            raise ValidationError("--tls-cert and --tls-key go together")
        paths = [Path(p).expanduser() for p in (cert, key)]
        if bool(allowlist) != bool(client_ca):
            raise ValidationError("--mtls-allowlist and --mtls-ca go together (Python's TLS verifies client "
                                  "certificates against --mtls-ca; the allowlist then decides who is admitted)")
        listed: frozenset[str] | None = None
        ca = Path(client_ca).expanduser() if client_ca else None
        for path in [*paths, *([ca] if ca else [])]:
            if not path.is_file():
                raise ValidationError(f"TLS file not found: {path}")
        if allowlist:
            try:
                listed = parse_allowlist(Path(allowlist).expanduser().read_text())
            except OSError as exc:
                raise ValidationError(f"--mtls-allowlist {allowlist}: {exc.strerror or exc}") from None
            except TlsError as exc:
                raise ValidationError(f"--mtls-allowlist {allowlist}: {exc}") from None
        return cls(paths[0], paths[1], listed, ca)


def _refusal(fingerprint: str | None) -> Any:
    """An ASGI app answering every request on a refused connection with the 403."""
    what = f"sha256:{fingerprint}" if fingerprint else "(none)"
    reply = reply_for(ClientCertificateRefused(f"client certificate {what} is not on the allowlist"))
    body = json.dumps(reply.body).encode()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": reply.status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})

    return app


def peer_fingerprint(transport: asyncio.BaseTransport) -> str | None:
    """SHA-256 of the client certificate's DER on a TLS connection, or None when it showed none."""
    ssl_object = transport.get_extra_info("ssl_object")
    if not isinstance(ssl_object, ssl.SSLObject | ssl.SSLSocket):
        return None
    der = ssl_object.getpeercert(binary_form=True)
    return der_fingerprint(der) if der else None


def allowlist_protocol(allowed: frozenset[str]) -> type[H11Protocol]:
    """uvicorn's HTTP/1.1 protocol, admitting only connections whose client certificate is in ``allowed``."""

    class AllowlistProtocol(H11Protocol):
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            fingerprint = peer_fingerprint(transport)
            if fingerprint not in allowed:
                log.warning("refusing %s: client certificate %s is not on the allowlist",
                            transport.get_extra_info("peername"), fingerprint)
                self.app = _refusal(fingerprint)

    return AllowlistProtocol


def uvicorn_tls_options(tls: HttpTls | None) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.Config``: none without TLS; with an allowlist, client certificates are
    required (verified against ``client_ca``) and the allowlisting protocol serves the connections."""
    if tls is None:
        return {}
    options: dict[str, Any] = {"ssl_certfile": str(tls.cert), "ssl_keyfile": str(tls.key)}
    if tls.allowlist is not None and tls.client_ca is not None:
        options.update(ssl_cert_reqs=ssl.CERT_REQUIRED, ssl_ca_certs=str(tls.client_ca),
                       http=allowlist_protocol(tls.allowlist))
    return options
