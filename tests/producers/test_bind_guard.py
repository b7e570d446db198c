"""``serve`` without an API key (the original v0.7.0's S5-C1 and #1458): loopback warns, anything else is refused
unless client certificates are required, and ``AI_MEMORY_REQUIRE_API_KEY`` refuses every keyless bind."""

from __future__ import annotations

from pathlib import Path

import pytest

from producers.errors import ValidationError
from producers.runtime.bind_guard import check_bind
from tests.producers.test_cli import run


@pytest.fixture(autouse=True)
def _lenient(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AI_MEMORY_REQUIRE_API_KEY", raising=False)


def test_a_key_binds_anywhere_silently(monkeypatch: pytest.MonkeyPatch) -> None:
    assert check_bind("0.0.0.0", api_key=True, client_certificates=False) is None
    monkeypatch.setenv("AI_MEMORY_REQUIRE_API_KEY", "1")
    assert check_bind("127.0.0.1", api_key=True, client_certificates=False) is None


def test_keyless_loopback_warns_and_elsewhere_is_refused() -> None:
    for host in ("127.0.0.1", "::1", "localhost", "[::1]"):
        warning = check_bind(host, api_key=False, client_certificates=False)
        assert warning is not None and "API key NOT configured" in warning and "off-host" in warning
    for host in ("0.0.0.0", "10.1.2.3", "::"):
        with pytest.raises(ValidationError, match="refusing to bind to non-loopback address"):
            check_bind(host, api_key=False, client_certificates=False)
    assert check_bind("0.0.0.0", api_key=False, client_certificates=True) is None


def test_strict_mode_refuses_every_keyless_bind(monkeypatch: pytest.MonkeyPatch) -> None:
    for value in ("1", "true"):
        monkeypatch.setenv("AI_MEMORY_REQUIRE_API_KEY", value)
        for certs in (False, True):
            with pytest.raises(ValidationError, match="AI_MEMORY_REQUIRE_API_KEY is set"):
                check_bind("127.0.0.1", api_key=False, client_certificates=certs)


def test_serve_refuses_before_opening_anything(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, tmp_path, "serve", "--host", "0.0.0.0", "--port", "1")
    assert code == 2 and "refusing to bind to non-loopback address '0.0.0.0'" in err
