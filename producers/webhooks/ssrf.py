"""The SSRF guard for webhook URLs, checked when a subscription is made (the URL) and before every delivery
attempt (every address the host name resolves to, then the connection goes to the checked address).

Rules: ``https`` is required except for loopback hosts (``localhost`` or a loopback address), where ``http``
is allowed; addresses that are not globally routable (RFC 1918, RFC 4193, link-local, CGNAT, multicast,
unspecified, reserved and documentation ranges) are refused unless the operator allows private networks
(``AI_MEMORY_WEBHOOK_ALLOW_PRIVATE=1``); a public name that resolves to a loopback or private address
(DNS rebinding) is refused the same way; a name that does not resolve is refused (fail closed). IPv4 wrapped in
IPv6 (``::ffff:a.b.c.d``, ``::a.b.c.d``, NAT64 ``64:ff9b::/96``) is judged as the IPv4 address it wraps.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from producers.errors import ValidationError

__all__ = ["SsrfError", "Target", "check_url", "resolve"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain"})
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


class SsrfError(ValidationError):
    """A webhook URL or the address it resolves to is refused (400 when subscribing)."""


@dataclass(frozen=True, slots=True)
class Target:
    url: str
    scheme: str
    host: str
    port: int
    #: The host is ``localhost`` or a loopback address: http is allowed, and it may resolve to loopback.
    loopback: bool


def _normalized(ip: IPAddress) -> IPAddress:
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip in _NAT64:
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if int(ip) >> 32 == 0 and int(ip) > 1:  # deprecated IPv4-compatible ::a.b.c.d
            return ipaddress.IPv4Address(int(ip))
    return ip


def _ip(host: str) -> IPAddress | None:
    try:
        return _normalized(ipaddress.ip_address(host))
    except ValueError:
        return None


def _private(ip: IPAddress) -> bool:
    return not ip.is_global or ip.is_multicast


def check_url(url: str, *, allow_private: bool) -> Target:
    """The URL's scheme and host, judged without resolving the name.

    Raises:
        SsrfError: not http(s), no host, http to a non-loopback host, or a private address literal.
    """
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise SsrfError(f"invalid webhook URL {url!r}: {exc}") from None
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    if scheme not in ("http", "https"):
        raise SsrfError(f"webhook URL scheme must be http(s): {url}")
    if not host:
        raise SsrfError(f"webhook URL has no host: {url}")
    ip = _ip(host)
    loopback = host in _LOOPBACK_NAMES or (ip is not None and ip.is_loopback)
    if scheme == "http" and not loopback:
        raise SsrfError(f"webhook URL must be https for non-loopback host: {url}")
    if ip is not None and not loopback and _private(ip) and not allow_private:
        raise SsrfError(f"webhook URL targets a private / link-local address: {url} "
                        "(set AI_MEMORY_WEBHOOK_ALLOW_PRIVATE=1 to allow private networks)")
    return Target(url=url.strip(), scheme=scheme, host=host, port=port or (443 if scheme == "https" else 80),
                  loopback=loopback)


async def resolve(target: Target, *, allow_private: bool) -> list[str]:
    """Resolve the host, check EVERY address it resolves to, and return them (distinct, in resolver order) for
    the connection to try in turn.

    Raises:
        SsrfError: the name does not resolve, or one of its addresses is refused.
    """
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise SsrfError(f"DNS resolution failed for {target.host}: {exc} (refused: the guard fails closed)") from None
    addresses = [str(info[4][0]) for info in infos]
    if not addresses:
        raise SsrfError(f"{target.host} resolves to no address")
    for address in addresses:
        ip = _ip(address.split("%", 1)[0])
        if ip is None:
            raise SsrfError(f"{target.host} resolves to an unusable address {address}")
        if ip.is_loopback:
            if not target.loopback:
                raise SsrfError(f"{target.host} resolves to loopback address {ip}: refused (DNS rebinding guard)")
        elif _private(ip) and not allow_private:
            raise SsrfError(f"{target.host} resolves to private / link-local address {ip}: refused "
                            "(set AI_MEMORY_WEBHOOK_ALLOW_PRIVATE=1 to allow private networks)")
    return list(dict.fromkeys(addresses))
