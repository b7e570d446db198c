"""Embedder settings, the circuit breaker and the onnxruntime provider choice: the parts with no I/O."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.embed import (
    CircuitBreaker,
    EmbedderConfigError,
    EmbedderSettings,
    embedder_kind,
    execution_providers,
    public_url,
)


@pytest.mark.parametrize(
    ("spec", "kind"),
    [
        ("local", "local"),
        ("auto", "local"),
        ("", "local"),
        ("OFF", "off"),
        ("http://10.0.0.5:9077/v1", "remote"),
        ("https://api.openai.com/v1", "remote"),
    ],
)
def test_embedder_kinds(spec: str, kind: str) -> None:
    assert embedder_kind(spec) == kind


@pytest.mark.parametrize("spec", ["minilm", "ftp://host/v1", "http://", "127.0.0.1:9077"])
def test_an_unknown_embedder_is_refused_with_what_is_accepted(spec: str) -> None:
    with pytest.raises(EmbedderConfigError, match="must be local, off or an OpenAI-compatible base URL"):
        embedder_kind(spec)


def test_settings_come_from_the_environment_and_options_win() -> None:
    env = {
        "AI_MEMORY_EMBED_MODEL": "nomic-embed-text",
        "AI_MEMORY_EMBED_DIM": "768",
        "AI_MEMORY_EMBED_TIMEOUT": "2.5",
        "AI_MEMORY_EMBED_BATCH": "16",
    }
    settings = EmbedderSettings.from_env({"batch": "32", "dim": None}, env=env)
    assert (settings.model, settings.dim, settings.timeout, settings.batch) == ("nomic-embed-text", 768, 2.5, 32)
    assert EmbedderSettings.from_env(env={}) == EmbedderSettings()


@pytest.mark.parametrize(
    ("given", "env", "named"),
    [
        ({"dim": "0"}, {}, "--embed-dim"),
        ({}, {"AI_MEMORY_EMBED_TIMEOUT": "soon"}, "AI_MEMORY_EMBED_TIMEOUT"),
        ({"device": "tpu"}, {}, "--embed-device"),
        ({}, {"AI_MEMORY_EMBED_RETRIES": "-1"}, "AI_MEMORY_EMBED_RETRIES"),
    ],
)
def test_a_bad_value_names_its_option(given: dict[str, str], env: dict[str, str], named: str) -> None:
    with pytest.raises(EmbedderConfigError, match=named):
        EmbedderSettings.from_env(given, env=env)


def test_the_api_key_comes_from_its_file_before_the_environment(tmp_path: Path) -> None:
    key = tmp_path / "key"
    key.write_text("s3cret\n")
    assert EmbedderSettings(api_key_file=key).api_key({"AI_MEMORY_EMBED_API_KEY": "other"}) == "s3cret"
    assert EmbedderSettings().api_key({"AI_MEMORY_EMBED_API_KEY": "other"}) == "other"
    assert EmbedderSettings().api_key({}) is None
    with pytest.raises(EmbedderConfigError, match="cannot read the API key file"):
        EmbedderSettings(api_key_file=tmp_path / "missing").api_key({})
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(EmbedderConfigError, match="is empty"):
        EmbedderSettings(api_key_file=tmp_path / "empty").api_key({})


def test_credentials_never_show_in_the_url() -> None:
    assert public_url("https://user:pw@embed.example:8443/v1") == "https://embed.example:8443/v1"
    assert public_url("http://127.0.0.1:9077/v1") == "http://127.0.0.1:9077/v1"


def test_the_gpu_is_taken_only_when_onnxruntime_has_it() -> None:
    gpu = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert execution_providers("auto", gpu) == gpu
    assert execution_providers("cuda", gpu) == gpu
    assert execution_providers("cpu", gpu) == ["CPUExecutionProvider"]
    assert execution_providers("auto", ["CPUExecutionProvider"]) == ["CPUExecutionProvider"]
    assert execution_providers("cuda", ["CPUExecutionProvider"]) == ["CPUExecutionProvider"]
    with pytest.raises(ValueError, match="auto, cuda, cpu"):
        execution_providers("gpu", gpu)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_circuit_opens_after_failures_in_a_row_and_probes_once_after_the_cooldown() -> None:
    clock = Clock()
    breaker = CircuitBreaker(threshold=3, cooldown=2.0, clock=clock)
    breaker.failed()
    breaker.failed()
    breaker.succeeded()  # a success in between: the count starts again
    for _ in range(2):
        breaker.failed()
    assert breaker.state == "closed" and breaker.allow()
    breaker.failed()
    assert breaker.state == "open" and not breaker.allow() and breaker.retry_in() == pytest.approx(2.0)
    clock.now += 2.0
    assert breaker.state == "half-open"
    assert breaker.allow() and not breaker.allow(), "one probe at a time"
    breaker.failed()  # the probe failed: open again for a whole cooldown
    assert breaker.state == "open" and breaker.retry_in() == pytest.approx(2.0)
    clock.now += 2.0
    assert breaker.allow()
    breaker.succeeded()
    assert breaker.state == "closed" and breaker.allow() and breaker.opened_total == 1


@pytest.mark.parametrize(
    ("options", "says"),
    [
        (["--embedder", "minilm"], "must be local, off or an OpenAI-compatible base URL"),
        (["--embed-model", "nomic-embed-text"], "no local model is called 'nomic-embed-text' (the node runs"),
        (["--embedder", "http://127.0.0.1:9/v1", "--embed-timeout", "soon"], "--embed-timeout: 'soon' is not valid"),
    ],
)
def test_the_cli_refuses_bad_embedder_settings_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], options: list[str], says: str
) -> None:
    from producers.cli.main import main as cli

    assert cli(["list", "--data-dir", str(tmp_path / "node"), *options]) == 2
    assert says in capsys.readouterr().err
