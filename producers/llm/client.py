"""An optional LLM behind an OpenAI-compatible ``/chat/completions`` endpoint (Ollama, vLLM, llama.cpp, OpenAI).

Configured by environment only, so an MCP client's JSON config can turn it on:
``AI_MEMORY_LLM_URL`` (base URL, e.g. ``http://127.0.0.1:11434/v1``), ``AI_MEMORY_LLM_MODEL`` and the optional
``AI_MEMORY_LLM_API_KEY``. Without a URL there is no LLM, and the LLM tools answer with the original's
"requires smart or autonomous tier" error. The prompts are the original's (its ``llm.rs``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import httpx

from producers.errors import FeatureUnavailableError, UnavailableError

__all__ = ["LlmClient", "LlmConfig", "open_llm", "require_llm"]

ENV_URL = "AI_MEMORY_LLM_URL"
ENV_MODEL = "AI_MEMORY_LLM_MODEL"
ENV_KEY = "AI_MEMORY_LLM_API_KEY"

QUERY_EXPANSION_PROMPT = ("You are a search query expander. Given a search query, generate 5-8 additional search "
                          "terms that are semantically related. Return ONLY the terms, one per line, no numbering "
                          "or explanation.\n\nQuery: {query}")
SUMMARIZE_PROMPT = ("Summarize the following memories into a single concise paragraph. Preserve all key facts, "
                    "decisions, and technical details.\n\n{memories}")
AUTO_TAG_PROMPT = ("Generate 3-5 short tags for categorizing this memory. Return ONLY the tags, one per line, "
                   "lowercase, no symbols.\n\nTitle: {title}\nContent: {content}")
CONTRADICTION_PROMPT = ('Do these two statements contradict each other? Answer ONLY "yes" or "no".\n\n'
                        "Statement A: {a}\nStatement B: {b}")


@dataclass(frozen=True)
class LlmConfig:
    url: str
    model: str
    api_key: str | None = None
    timeout: float = 60.0

    @classmethod
    def from_env(cls) -> LlmConfig | None:
        url = os.environ.get(ENV_URL, "").strip()
        if not url:
            return None
        return cls(url=url.rstrip("/"), model=os.environ.get(ENV_MODEL, "gemma4:e2b"),
                   api_key=os.environ.get(ENV_KEY) or None)


def open_llm() -> LlmClient | None:
    """A client for the endpoint the environment names (:meth:`LlmConfig.from_env`), or None without one."""
    config = LlmConfig.from_env()
    return LlmClient(config) if config is not None else None


def require_llm(llm: LlmClient | None, what: str) -> LlmClient:
    """The configured client, or the original's error naming what needs one."""
    if llm is None:
        msg = (f"{what} requires smart or autonomous tier (Ollama LLM); no LLM is configured "
               f"(set {ENV_URL} to an OpenAI-compatible endpoint)")
        raise FeatureUnavailableError(msg)
    return llm


def _lines(text: str, *, lower: bool = False) -> list[str]:
    out = [line.strip() for line in text.splitlines() if line.strip()]
    return [line.lower() for line in out] if lower else out


class LlmClient:
    def __init__(self, config: LlmConfig, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.config = config
        headers = {"Authorization": f"Bearer {config.api_key}"} if config.api_key else {}
        self._http = httpx.AsyncClient(base_url=config.url, headers=headers, timeout=config.timeout,
                                       transport=transport)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def generate(self, prompt: str, *, system: str | None = None) -> str:
        messages = [{"role": "system", "content": system}] if system is not None else []
        body: dict[str, Any] = {"model": self.config.model, "stream": False,
                                "messages": [*messages, {"role": "user", "content": prompt}]}
        try:
            response = await self._http.post("/chat/completions", json=body)
        except httpx.HTTPError as exc:
            raise UnavailableError(f"LLM request failed: {exc}") from None
        if response.status_code != 200:
            raise UnavailableError(f"Chat generate failed ({response.status_code}): {response.text[:200]}")
        try:
            return str(response.json()["choices"][0]["message"]["content"])
        except (ValueError, KeyError, IndexError, TypeError):
            raise UnavailableError("Failed to parse chat response: invalid JSON") from None

    async def expand_query(self, query: str) -> list[str]:
        return _lines(await self.generate(QUERY_EXPANSION_PROMPT.format(query=query)))

    async def auto_tag(self, title: str, content: str) -> list[str]:
        return _lines(await self.generate(AUTO_TAG_PROMPT.format(title=title, content=content)), lower=True)

    async def detect_contradiction(self, a: str, b: str) -> bool:
        answer = await self.generate(CONTRADICTION_PROMPT.format(a=a, b=b))
        return answer.strip().lower().startswith("yes")

    async def summarize(self, memories: list[tuple[str, str]]) -> str:
        formatted = "\n\n".join(f"--- Memory {i} ---\nTitle: {t}\n{c}" for i, (t, c) in enumerate(memories, 1))
        return (await self.generate(SUMMARIZE_PROMPT.format(memories=formatted))).strip()
