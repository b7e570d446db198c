"""Which embedder a node uses, from ``--embedder`` (env ``AI_MEMORY_EMBEDDER``) and its companions.

``--embedder``: ``local`` (the default; ``auto`` is the same, kept from before) runs a sentence model in the
process (``--embed-model``: minilm, the default, or mpnet); ``off`` runs without embeddings (recall in keyword
mode); an ``http(s)://host:port/v1`` base URL uses that OpenAI-compatible service (:class:`RemoteEmbedder`).
Every other knob has an environment variable (``AI_MEMORY_EMBED_<NAME>``) and, on the command line,
``--embed-<name>``. The API key is read from ``AI_MEMORY_EMBED_API_KEY`` or the file ``--embed-api-key-file``
names, never from the command line (where ``ps`` shows it), and it is never logged.
"""

from __future__ import annotations

import logging
import os
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from infra.embed.circuit import CircuitBreaker
from infra.embed.embedder import DEVICES, MINILM
from infra.embed.errors import EmbedderConfigError, EmbedError
from infra.embed.remote import RemoteEmbedder

__all__ = ["KINDS", "EmbedderSettings", "embedder_kind", "open_remote"]

log = logging.getLogger("ai_memory.embed")

KINDS = ("local", "off", "remote")
_LOCAL = ("local", "auto", "")
_KEY_ENV = "AI_MEMORY_EMBED_API_KEY"
#: The dimension assumed for a service that could not be asked at start and was given no --embed-dim.
_FALLBACK_DIM = 384


def embedder_kind(spec: str) -> str:
    """``local``, ``off`` or ``remote`` for an ``--embedder`` value.

    Raises:
        EmbedderConfigError: anything else (a typo must not silently run without embeddings).
    """
    value = spec.strip()
    if value.lower() in _LOCAL:
        return "local"
    if value.lower() == "off":
        return "off"
    parts = urlsplit(value)
    if parts.scheme in ("http", "https") and parts.hostname:
        return "remote"
    msg = (
        f"--embedder (AI_MEMORY_EMBEDDER) must be local, off or an OpenAI-compatible base URL such as "
        f"http://host:9077/v1 (got {spec!r})"
    )
    raise EmbedderConfigError(msg)


def _positive(cast: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        value = cast(text)
        if value <= 0:
            raise ValueError("must be positive")
        return value

    return parse


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError("must not be negative")
    return value


def _path(text: str) -> Path:
    return Path(text).expanduser()


def _device(text: str) -> str:
    if text not in DEVICES:
        raise ValueError(f"one of {', '.join(DEVICES)}")
    return text


@dataclass(frozen=True)
class EmbedderSettings:
    """Everything but the ``--embedder`` choice itself (which stays ``NodeConfig.embedder``)."""

    model: str | None = None  # the service's model name; local: minilm or mpnet (infra.embed.catalog)
    dim: int | None = None  # the dimension the node indexes; None: ask the service at start
    api_key_file: Path | None = None
    # Seconds per request: a CPU-bound service queues a bulk's batches, so this is time to answer, not to connect.
    timeout: float = 30.0
    batch: int = 64  # texts per request
    retries: int = 2  # further tries of a failed request (no answer, 429, 5xx)
    # Requests in flight during a bulk: 2 hide a 50-150 ms link behind the service's work; more only queue there.
    concurrency: int = 2
    breaker_threshold: int = 3  # failed requests in a row that open the circuit
    breaker_cooldown: float = 2.0  # seconds before the service is tried again
    catch_up_secs: float = 5.0  # how often `serve` embeds memories stored while the service was down
    device: str = "auto"  # the local model: auto, cuda or cpu
    tls_ca: Path | None = None  # CA of an https service with a private CA (mutual TLS: with cert and key)
    tls_cert: Path | None = None  # client certificate for a service that requires one (ai-memory's mTLS)
    tls_key: Path | None = None

    @classmethod
    def from_env(
        cls, given: Mapping[str, Any] | None = None, *, env: Mapping[str, str] = os.environ
    ) -> EmbedderSettings:
        """Settings from ``AI_MEMORY_EMBED_*``, overridden by ``given`` (command-line values; None = not given).

        Raises:
            EmbedderConfigError: a value that does not parse, naming the variable.
        """
        values: dict[str, Any] = {}
        for name, parse in _PARSERS.items():
            variable = f"AI_MEMORY_EMBED_{name.upper()}"
            raw = (given or {}).get(name)
            source = f"--embed-{name.replace('_', '-')}" if raw is not None else variable
            raw = raw if raw is not None else env.get(variable)
            if raw is None or raw == "":
                continue
            try:
                values[name] = parse(str(raw))
            except ValueError as exc:
                raise EmbedderConfigError(f"{source}: {raw!r} is not valid ({exc})") from None
        return cls(**values)

    def api_key(self, env: Mapping[str, str] = os.environ) -> str | None:
        """The key from the file (first line) or ``AI_MEMORY_EMBED_API_KEY``.

        Raises:
            EmbedderConfigError: the file cannot be read or is empty.
        """
        if self.api_key_file is not None:
            try:
                key = self.api_key_file.read_text().strip().splitlines()
            except OSError as exc:
                raise EmbedderConfigError(
                    f"cannot read the API key file {self.api_key_file}: {exc.strerror or exc}"
                ) from None
            if not key or not key[0].strip():
                raise EmbedderConfigError(f"the API key file {self.api_key_file} is empty")
            return key[0].strip()
        return env.get(_KEY_ENV) or None

    def tls(self) -> ssl.SSLContext | bool:
        """The TLS context for the service: the system's CAs, or ``tls_ca``, plus the client certificate.

        Raises:
            EmbedderConfigError: a file that cannot be loaded, or a certificate without its key.
        """
        if self.tls_ca is None and self.tls_cert is None:
            return True
        if (self.tls_cert is None) != (self.tls_key is None):
            raise EmbedderConfigError("AI_MEMORY_EMBED_TLS_CERT and AI_MEMORY_EMBED_TLS_KEY go together")
        try:
            context = ssl.create_default_context(cafile=str(self.tls_ca) if self.tls_ca else None)
            if self.tls_cert is not None and self.tls_key is not None:
                context.load_cert_chain(str(self.tls_cert), str(self.tls_key))
        except (OSError, ssl.SSLError) as exc:
            raise EmbedderConfigError(f"cannot load the embedding service's TLS files: {exc}") from None
        return context


_PARSERS: dict[str, Callable[[str], Any]] = {
    "model": str,
    "dim": _positive(int),
    "api_key_file": _path,
    "timeout": _positive(float),
    "batch": _positive(int),
    "retries": _count,
    "concurrency": _positive(int),
    "breaker_threshold": _positive(int),
    "breaker_cooldown": _positive(float),
    "catch_up_secs": _positive(float),
    "device": _device,
    "tls_ca": _path,
    "tls_cert": _path,
    "tls_key": _path,
}
assert set(_PARSERS) == {f.name for f in fields(EmbedderSettings)}


def open_remote(url: str, settings: EmbedderSettings) -> RemoteEmbedder:
    """The service at ``url`` as an embedder. Without ``settings.dim`` it is asked once for a vector to learn
    the dimension; when it does not answer, the node starts anyway (writes are stored without vectors until it
    is back) assuming 384, and says so.

    Raises:
        EmbedderConfigError: the API key file cannot be read.
    """
    embedder = RemoteEmbedder(
        url,
        settings.model or MINILM,
        dim=settings.dim,
        api_key=settings.api_key(),
        timeout=settings.timeout,
        batch=settings.batch,
        retries=settings.retries,
        concurrency=settings.concurrency,
        breaker=CircuitBreaker(threshold=settings.breaker_threshold, cooldown=settings.breaker_cooldown),
        verify=settings.tls(),
    )
    if settings.dim is None:
        try:
            embedder.probe()
        except EmbedError as exc:
            embedder.dim = _FALLBACK_DIM
            log.warning(
                "the embedding service did not answer at start (%s); assuming %d dimensions for %s "
                "(pass --embed-dim to say)",
                exc,
                _FALLBACK_DIM,
                embedder.model,
            )
    return embedder
