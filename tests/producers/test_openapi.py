"""The OpenAPI document, and a schemathesis run over it against a real ``ai-memory serve``: no server errors,
and every error is JSON ``{"error": ...}`` with a 4xx status.

The run is bounded (a fixed number of examples per operation, positive and negative, derandomized: the
same requests on every run) so it fits in about a minute on a small machine.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import Case, GenerationMode
from schemathesis.core.result import Err

from producers.http import create_app
from producers.http.openapi import REQUESTS, operations
from producers.runtime.node import Node
from tests.servers import ServerProcess

CHILD_ENV = {"AI_MEMORY_AGENT_ID": ""}
#: Examples per operation and generation mode: 72 operations x 2 modes x this many requests (more for a
#: deeper run by hand: AI_MEMORY_FUZZ_EXAMPLES=200).
EXAMPLES = int(os.environ.get("AI_MEMORY_FUZZ_EXAMPLES", "6"))
#: Operations that never end by design (server-sent events): called, they would hold the run.
STREAMING = {("GET", "/api/v1/approvals/stream")}


def test_every_route_is_described(node: Node) -> None:
    """The document is built from the routes; each route's parameters come from REQUESTS. Both must match."""
    routed = {(method, path) for method, path, _ in operations(create_app(node).routes)}
    assert routed - set(REQUESTS) == set(), "routes without a request description"
    assert set(REQUESTS) - routed == set(), "request descriptions that name no route"


async def test_document_served(node: Node) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(node)), base_url="http://t") as c:
        doc = (await c.get("/api/v1/openapi.json")).json()
    assert doc["openapi"].startswith("3.")
    create = doc["paths"]["/api/v1/memories"]["post"]
    schema = create["requestBody"]["content"]["application/json"]["schema"]
    assert schema["required"] == ["title", "content"] and schema["properties"]["title"]["maxLength"] == 512
    assert {p["name"] for p in doc["paths"]["/api/v1/namespaces/{ns}/standard"]["get"]["parameters"]} \
        == {"ns", "inherit"}
    schemathesis.openapi.from_dict(doc)  # loads as OpenAPI


#: Query values and JSON values that once reached a 500 somewhere (issue #20), tried on every documented
#: parameter of every operation: a deterministic sweep beside schemathesis's random one.
HOSTILE_QUERY = ["9" * 30, "9" * 5000, "-" + "9" * 30, "99999999999999999999", "inf", "NaN", "1e400", "a\x00b",
                 "%ED%A0%80", " ", "\u00b2", "0", "+275760-09-13T00:00:00Z", "0000-01-01T00:00:00Z", "nope:1",
                 "x" * 5000]
HOSTILE_JSON: list[Any] = [10**30, -(10**30), 1.5, -1, "a\x00b", "x" * 70_000, [], {}, True, [1], {"a": [1]},
                           "9" * 30, "+275760-09-13T00:00:00Z", "2026-13-45T99:99:99Z"]


@pytest.mark.parametrize("read_model", ["sqlite", "postgres"], indirect=True)
async def test_every_parameter_survives_hostile_values(node: Node) -> None:
    app = create_app(node)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
                                 base_url="http://t") as c:
        memory = (await c.post("/api/v1/memories", json={"title": "seed", "content": "seed"})).json()["id"]
        doc = (await c.get("/api/v1/openapi.json")).json()
        failures: list[str] = []
        for path, methods in doc["paths"].items():
            url = path.replace("{id}", memory).replace("{ns}", "a/b").replace("{agent_id}", "a")
            for method, op in methods.items():
                if (method.upper(), path) in STREAMING:
                    continue
                for name in (p["name"] for p in op["parameters"] if p["in"] == "query"):
                    for text in HOSTILE_QUERY:
                        response = await c.request(method, url, params={name: text})
                        failures += _failure(response, f"{method} {path} ?{name}={text[:30]!r}")
                body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})
                required = dict.fromkeys(body.get("required", []), "x")
                for name in body.get("properties", {}):
                    for value in HOSTILE_JSON:
                        response = await c.request(method, url, json={**required, name: value})
                        failures += _failure(response, f"{method} {path} {name}={str(value)[:30]!r}")
    assert failures == [], "\n".join(failures)


#: Answers that are not faults: a tool or LLM this node does not have (501; 503 "LLM not configured", as the
#: original). Both must still be JSON errors.
NOT_FAULTS = (501, 503)


def _failure(response: httpx.Response, where: str) -> list[str]:
    if response.status_code >= 500 and response.status_code not in NOT_FAULTS:
        return [f"{response.status_code} on {where}: {response.text[:200]}"]
    if response.status_code >= 400 and "error" not in response.json():
        return [f"no error field on {where}"]
    return []


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path_factory.mktemp("openapi") / "data", env=CHILD_ENV).start(timeout=60)
    try:
        yield proc
    finally:
        proc.stop()


def _check(case: Case[Any], response: Any) -> None:
    where = f"{case.method} {case.formatted_path} query={case.query} body={str(case.body)[:200]}"
    assert response.status_code < 500 or response.status_code in NOT_FAULTS, (
        f"{response.status_code} on {where}: {response.text[:300]}")
    if response.status_code >= 400:
        content_type = response.headers.get("content-type", [""])[0]  # schemathesis keeps every value: a list
        assert content_type.startswith("application/json"), f"not JSON: {where}"
        body = response.json()
        assert isinstance(body, dict) and isinstance(body.get("error"), str), f"no error field: {where}"


def _fuzz(operation: Any, mode: GenerationMode, base_url: str) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    def run(case: Case[Any]) -> None:
        _check(case, case.call(base_url=base_url, timeout=15))

    run()


@pytest.mark.slow
def test_schemathesis_no_server_errors(server: ServerProcess) -> None:
    schema = schemathesis.openapi.from_dict(httpx.get(f"{server.url}/api/v1/openapi.json").json())
    failures: list[str] = []
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            failures.append(f"invalid operation in the document: {result.err()}")
            continue
        operation = result.ok()
        if (operation.method.upper(), operation.path) in STREAMING:
            continue
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                _fuzz(operation, mode, server.url)
            except Unsatisfiable:
                assert mode is GenerationMode.NEGATIVE  # nothing to get wrong in a request without parameters
            except AssertionError as exc:
                failures.append(str(exc).splitlines()[0])
    assert failures == [], "\n".join(failures)
    assert server.proc is not None and server.proc.poll() is None, "the server died"

