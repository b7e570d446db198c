"""The pure parts of webhooks: the SSRF guard (URL rules, and every resolved address), the signature (a vector
computed the original's way), sealing the HMAC key to node keys, correlation ids and subscription filters."""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from producers.webhooks import SsrfError, check_url, hmac_key, resolve, signature, verify_signature
from producers.webhooks.signing import seal, unseal
from producers.webhooks.ssrf import Target
from projectors import WebhookEvent, correlation_id, matches
from schemas import Keyring, load_or_create_node_key

# -- the SSRF guard -------------------------------------------------------------------------------------------

REFUSED = {
    "http://example.com/hook": "must be https",
    "http://8.8.8.8/hook": "must be https",
    "ftp://example.com/hook": "scheme",
    "https:///nohost": "no host",
    "https://10.0.0.1/hook": "private",
    "https://172.16.5.4/hook": "private",
    "https://192.168.1.1/hook": "private",
    "https://100.64.0.1/hook": "private",  # carrier-grade NAT
    "https://169.254.169.254/latest/meta-data": "private",  # cloud metadata
    "https://0.0.0.0/hook": "private",
    "https://224.0.0.1/hook": "private",
    "https://[fe80::1]/hook": "private",
    "https://[fc00::1]/hook": "private",
    "https://[::]/hook": "private",
    "https://[::ffff:10.0.0.1]/hook": "private",  # IPv4-mapped
    "https://[64:ff9b::a9fe:a9fe]/hook": "private",  # NAT64 of 169.254.169.254
    "https://[::10.0.0.1]/hook": "private",  # deprecated IPv4-compatible
}


@pytest.mark.parametrize(("url", "fragment"), REFUSED.items(), ids=list(REFUSED))
def test_refused_urls(url: str, fragment: str) -> None:
    with pytest.raises(SsrfError, match=fragment):
        check_url(url, allow_private=False)


@pytest.mark.parametrize("url", ["https://example.com/hook", "https://api.example.com:8443/h?x=1",
                                 "http://localhost:9000/hook", "http://127.0.0.1:8080/hook", "http://[::1]/hook",
                                 "https://localhost/hook", "http://[::ffff:127.0.0.1]:81/hook"])
def test_accepted_urls(url: str) -> None:
    target = check_url(url, allow_private=False)
    assert target.scheme in ("http", "https") and target.port > 0


def test_the_operator_can_allow_private_networks_but_never_plain_http_to_them() -> None:
    assert check_url("https://10.0.0.1/hook", allow_private=True).host == "10.0.0.1"
    assert check_url("https://[fd00::1]/hook", allow_private=True).port == 443
    with pytest.raises(SsrfError, match="must be https"):
        check_url("http://10.0.0.1/hook", allow_private=True)


async def test_every_resolved_address_is_checked() -> None:
    loopback = check_url("http://localhost:9/hook", allow_private=False)
    assert set(await resolve(loopback, allow_private=False)) <= {"127.0.0.1", "::1"}
    # A name that is not a loopback name but resolves to loopback (DNS rebinding): refused.
    rebinding = Target(url="https://localhost/hook", scheme="https", host="localhost", port=443, loopback=False)
    with pytest.raises(SsrfError, match="loopback"):
        await resolve(rebinding, allow_private=False)
    # An address literal that is private: refused at resolution too (and allowed by the operator's switch).
    private = Target(url="https://10.9.8.7/", scheme="https", host="10.9.8.7", port=443, loopback=False)
    with pytest.raises(SsrfError, match="private"):
        await resolve(private, allow_private=False)
    assert await resolve(private, allow_private=True) == ["10.9.8.7"]


async def test_a_name_that_does_not_resolve_is_refused() -> None:
    target = check_url("https://no-such-host.invalid/hook", allow_private=False)
    with pytest.raises(SsrfError, match="DNS resolution failed"):
        await resolve(target, allow_private=False)


# -- signatures and sealing ------------------------------------------------------------------------------------


def _original_signature(secret: str, timestamp: str, body: str) -> str:
    """The original's construction, spelled out: key_hex = hex(SHA-256(secret)), decoded back to bytes, then
    HMAC-SHA256 over "<timestamp>.<body>"."""
    key_hex = hashlib.sha256(secret.encode()).hexdigest()
    return "sha256=" + hmac.new(bytes.fromhex(key_hex), f"{timestamp}.{body}".encode(), hashlib.sha256).hexdigest()


def test_signature_matches_the_originals_construction() -> None:
    body = '{"event":"memory_store","memory_id":"m1"}'
    assert signature(hmac_key("s3cret"), "1767225600", body.encode()) == _original_signature("s3cret", "1767225600",
                                                                                            body)
    header = signature(hmac_key("s3cret"), str(int(time.time())), body.encode())
    now = time.time()
    assert verify_signature("s3cret", str(int(now)), body.encode(), header, now=now)
    assert not verify_signature("other", str(int(now)), body.encode(), header, now=now)
    assert not verify_signature("s3cret", str(int(now) - 3600), body.encode(), header, now=now)  # stale


def test_the_key_is_sealed_to_each_node_and_opens_only_there(tmp_path: Path) -> None:
    a = load_or_create_node_key(tmp_path / "a", "node-a")
    b = load_or_create_node_key(tmp_path / "b", "node-b")
    outsider = load_or_create_node_key(tmp_path / "c", "node-c")
    ring = Keyring({"node-a": a.public_bytes, "node-b": b.public_bytes})
    sealed = seal(hmac_key("s3cret"), ring)
    assert set(sealed) == {"node-a", "node-b"}
    assert unseal(sealed["node-a"], a) == unseal(sealed["node-b"], b) == hmac_key("s3cret")
    assert unseal(sealed["node-a"], b) is None and unseal(sealed["node-a"], outsider) is None
    assert unseal("not base64 at all!", a) is None


# -- correlation ids and filters -------------------------------------------------------------------------------


def test_correlation_ids_are_deterministic_uuid7_in_event_time_order() -> None:
    first = correlation_id("sub-1", "event-1", "2026-05-01T00:00:00.000+00:00")
    assert first == correlation_id("sub-1", "event-1", "2026-05-01T00:00:00.000+00:00")
    later = correlation_id("sub-1", "event-2", "2026-05-01T00:00:01.000+00:00")
    other_sub = correlation_id("sub-2", "event-1", "2026-05-01T00:00:00.000+00:00")
    parsed = uuid.UUID(first)
    assert parsed.version == 7 and parsed.variant == uuid.RFC_4122
    assert first < later and first != other_sub
    assert int(parsed.hex[:12], 16) == 1777593600000  # the event's Unix milliseconds


@dataclass(frozen=True)
class Sub:
    events: str = "*"
    namespace_filter: str | None = None
    agent_filter: str | None = None


def test_filters_as_the_original() -> None:
    event = WebhookEvent("memory_store", "m1", "ops", "alice")
    assert matches(Sub(), event)
    assert matches(Sub(events="memory_delete, memory_store"), event)
    assert not matches(Sub(events="memory_delete"), event)
    assert matches(Sub(namespace_filter="ops", agent_filter="alice"), event)
    assert not matches(Sub(namespace_filter="ops/sub"), event)  # exact namespace, no hierarchy
    assert not matches(Sub(agent_filter="bob"), event)
    assert not matches(Sub(agent_filter="bob"), WebhookEvent("memory_store", "m1", "ops", None))
