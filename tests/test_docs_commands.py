"""Every command a reader copies from README.md, bench/README.md, tests/README.md or docs/ names something that exists:
each ``ai-memory …`` line parses with the real CLI parser, each ``python -m infra.cluster.local …`` line with the
launcher's, and each path a ``curl`` line calls is routed by the HTTP app. (The Quickstart's snippets are also run
for real, in order, by tests/integration/test_readme_quickstart.py.)"""

from __future__ import annotations

import contextlib
import io
import re
import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.routing import Route

from infra.cluster.local import build_parser as launcher_parser
from producers.cli.main import build_parser
from producers.http import create_app
from producers.runtime.node import Node

ROOT = Path(__file__).resolve().parent.parent
SHELLS = {"bash", "sh", "shell", "console", ""}


def documents() -> list[Path]:
    found = [ROOT / "README.md", ROOT / "bench" / "README.md", ROOT / "tests" / "README.md"]
    return [p for p in found if p.exists()] + sorted((ROOT / "docs").rglob("*.md"))


def shell_lines(path: Path) -> Iterator[list[str]]:
    """The words of each command in the fenced shell blocks: continuations joined, prompts and comments dropped,
    cut at the first pipe, redirection, chain or background mark (quotes respected, as the shell does)."""
    for lang, code in re.findall(r"```(\w*)\n(.*?)```", path.read_text(encoding="utf-8"), flags=re.S):
        if lang not in SHELLS:
            continue
        pending = ""
        for line in re.sub(r"\\\n\s*", " ", code).splitlines():
            line = re.sub(r"<[\w.-]+>", "x", line)  # a placeholder such as <id>, not a redirection
            pending = f"{pending}\n{line}" if pending else re.sub(r"^\s*\$\s+", "", line)
            try:
                words = _words(pending)
            except ValueError:  # a quote that closes on a later line, as in a JSON body
                continue
            pending = ""
            if words:
                yield words


def _words(command: str) -> list[str]:
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    words = []
    for word in lexer:
        if set(word) <= set("|&;<>()"):
            break
        words.append(word)
    return words


def _argv(words: list[str], prefix: str) -> list[str] | None:
    """The arguments after ``prefix`` when the command runs it (possibly after VAR=value assignments)."""
    words = list(words)
    while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", words[0]):
        words.pop(0)
    head = prefix.split()
    return words[len(head):] if words[:len(head)] == head else None


def _refusal(parse: object, argv: list[str]) -> str | None:
    """argparse's complaint about ``argv``, or None when it parses."""
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            parse(argv)  # type: ignore[operator]
    except SystemExit as exc:
        if exc.code:
            return err.getvalue().strip().splitlines()[-1]
    return None


def _cli_refusal(argv: list[str]) -> str | None:
    if argv[:2] == ["cluster", "up"]:  # the launcher behind the verb parses the rest
        return _refusal(launcher_parser(prog="ai-memory cluster up").parse_args, argv[2:])
    return _refusal(build_parser().parse_args, argv)


def test_documents_are_found() -> None:
    assert ROOT / "README.md" in documents()
    assert any(words[0] == "ai-memory" for words in shell_lines(ROOT / "README.md"))


@pytest.mark.parametrize("path", documents(), ids=lambda p: str(p.relative_to(ROOT)))
def test_cli_lines_parse(path: Path) -> None:
    refused = []
    for words in shell_lines(path):
        for prefix, check in (("ai-memory", _cli_refusal),
                              ("python -m infra.cluster.local",
                               lambda argv: _refusal(launcher_parser().parse_args, argv))):
            argv = _argv(words, prefix)
            if argv is not None and (why := check(argv)):
                refused.append(f"{shlex.join(words)}  ->  {why}")
    assert refused == []


def _curl_paths(path: Path) -> Iterator[tuple[str, str]]:
    """(method, path) of each URL a curl command calls."""
    for words in shell_lines(path):
        if words[0] != "curl":
            continue
        method = "POST" if {"-d", "--data", "--data-raw", "--data-binary", "--json"} & set(words) else "GET"
        if "-X" in words[:-1]:
            method = words[words.index("-X") + 1].upper()
        for word in words:
            if found := re.match(r"(https?://[^/]+|[\w.-]+:\d+|\$\w+|\$\{\w+\})(/[^?]*)", word):
                # After a shell variable ($B/agents, B set to a node's API base) the base is one of ours.
                relative = found.group(1).startswith("$")
                for base in ("", "/api/v1", "/api") if relative else ("",):
                    yield method, base + re.sub(r"\$\{?\w+\}?", "x", found.group(2))


async def test_curl_paths_are_routed(node: Node) -> None:
    routes = [(method, re.compile(re.sub(r"\{\w+:path\}", ".+", re.sub(r"\{\w+\}", "[^/]+", route))))
              for route_ in create_app(node).routes if isinstance(route_, Route)
              for method, route in ((m, route_.path) for m in route_.methods or ())]
    by_doc: dict[str, dict[tuple[str, str], bool]] = {}
    for doc in documents():
        for method, url in _curl_paths(doc):
            seen = by_doc.setdefault(str(doc.relative_to(ROOT)), {})
            key = (method, url.removeprefix("/api/v1").removeprefix("/api"))
            seen[key] = seen.get(key, False) or any(m == method and r.fullmatch(url) for m, r in routes)
    assert [f"{doc}: {m} {u}" for doc, seen in by_doc.items() for (m, u), ok in seen.items() if not ok] == []


@pytest.mark.parametrize("path", documents(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_lead_somewhere(path: Path) -> None:
    """A guide moved to docs/ must not leave a link behind that leads nowhere."""
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.S)
    targets = re.findall(r"\]\(([^)\s#]+)(?:#[^)]*)?\)", text)
    broken = [t for t in targets if not t.startswith(("http://", "https://", "mailto:"))
              and not (path.parent / t).exists()]
    assert broken == []
