"""TLS for the mesh: a dev CA and node certificates (``cryptography``), SSL contexts, fingerprint allowlists.

Every node's certificate is signed by one CA and carries both server and client use, so the same files serve
the node's NATS server (client port and cluster routes, ``verify: true``) and its clients. Example::

    ca = make_ca(certs_dir)
    files = make_node_cert(certs_dir, "n1", ca)        # n1.pem, n1.key, ca.pem
    ctx = client_context(files)                        # for JetStreamLog.connect(..., tls=ctx)

Allowlists use the original's format: one SHA-256 of the certificate's DER per line, ``:`` separators
allowed, optional ``sha256:`` prefix, ``#`` comments (whole-line or trailing), blank lines ignored.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import re
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "CertificateAuthority",
    "TlsError",
    "TlsFiles",
    "client_context",
    "der_fingerprint",
    "fingerprint",
    "make_allowlist",
    "make_ca",
    "make_node_cert",
    "open_or_make_ca",
    "parse_allowlist",
]

_HEX64 = re.compile(r"[0-9a-f]{64}")
_VALIDITY = dt.timedelta(days=365)


class TlsError(Exception):
    """A certificate, key or allowlist is unusable (message says which and why)."""


@dataclass(frozen=True)
class TlsFiles:
    """One party's PEM files: its certificate, its private key, and the CA it trusts."""

    cert: Path
    key: Path
    ca: Path


@dataclass(frozen=True)
class CertificateAuthority:
    cert_path: Path
    key_path: Path


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    path.chmod(0o600)


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ai-memory dev"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common)])


def make_ca(directory: Path, *, name: str = "ai-memory dev CA") -> CertificateAuthority:
    """A self-signed CA (P-256) in ``directory``/ca.pem and ca.key."""
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(_name(name)).issuer_name(_name(name))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + _VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    ca = CertificateAuthority(directory / "ca.pem", directory / "ca.key")
    ca.cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(ca.key_path, key)
    return ca


def open_or_make_ca(directory: Path) -> CertificateAuthority:
    """The CA already in ``directory`` (ca.pem and ca.key), or a new one: adding a node keeps the others valid."""
    ca = CertificateAuthority(directory / "ca.pem", directory / "ca.key")
    if ca.cert_path.is_file() and ca.key_path.is_file():
        return ca
    return make_ca(directory)


def make_node_cert(directory: Path, name: str, ca: CertificateAuthority, *,
                   hosts: tuple[str, ...] = ("127.0.0.1", "localhost")) -> TlsFiles:
    """A certificate for ``name`` signed by ``ca``, valid for ``hosts`` as server and as client."""
    ca_cert = x509.load_pem_x509_certificate(ca.cert_path.read_bytes())
    ca_key = serialization.load_pem_private_key(ca.key_path.read_bytes(), password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise TlsError(f"{ca.key_path}: expected the EC key make_ca writes")
    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = []
    for host in hosts:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            sans.append(x509.DNSName(host))
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(_name(name)).issuer_name(ca_cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + _VALIDITY)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    files = TlsFiles(directory / f"{name}.pem", directory / f"{name}.key", ca.cert_path)
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(files.key, key)
    return files


def client_context(files: TlsFiles) -> ssl.SSLContext:
    """An SSL context that trusts ``files.ca`` and presents ``files.cert`` (mutual TLS)."""
    try:
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(files.ca))
        ctx.load_cert_chain(str(files.cert), str(files.key))
    except (OSError, ssl.SSLError) as exc:
        raise TlsError(f"TLS files {files.cert}, {files.key}, {files.ca}: {exc}") from exc
    return ctx


def der_fingerprint(der: bytes) -> str:
    """SHA-256 of a certificate's DER, 64 lowercase hex digits (what allowlists hold)."""
    return hashlib.sha256(der).hexdigest()


def fingerprint(cert_pem: bytes) -> str:
    """:func:`der_fingerprint` of a PEM certificate."""
    return der_fingerprint(x509.load_pem_x509_certificate(cert_pem).public_bytes(serialization.Encoding.DER))


def parse_allowlist(text: str) -> frozenset[str]:
    """The fingerprints in an allowlist file (the original's format; whitespace inside the hex is refused)."""
    found: set[str] = set()
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        value = line.lower().removeprefix("sha256:").replace(":", "")
        if not _HEX64.fullmatch(value):
            raise TlsError(f"allowlist line {number}: not a SHA-256 fingerprint: {raw.strip()!r}")
        found.add(value)
    return frozenset(found)


def make_allowlist(path: Path, certs: list[Path]) -> frozenset[str]:
    """Write an allowlist (the original's format, one fingerprint per line, the file name as a comment)."""
    lines = ["# SHA-256 of each admitted client certificate's DER (ai-memory certs)"]
    found: set[str] = set()
    for cert in sorted(certs):
        digest = fingerprint(cert.read_bytes())
        found.add(digest)
        lines.append(f"sha256:{digest}  # {cert.name}")
    path.write_text("\n".join(lines) + "\n")
    return frozenset(found)
