"""Fixtures for the real-client tests.

These tests drive a running Switchyard gateway with the official client SDKs. They
are started by `cargo test --test real_clients` (part of `scripts/test.sh`), which
runs the gateway in-process in front of scripted mock upstreams and passes:

- SWITCHYARD_URL: the gateway's root, e.g. http://127.0.0.1:PORT (Anthropic's SDK adds /v1)
- SWITCHYARD_BASE_URL: the gateway's OpenAI base URL, e.g. http://127.0.0.1:PORT/v1
- SWITCHYARD_API_KEY: the client key the gateway wants (default "sk-switchyard-test")
- MOCK_UPSTREAM_URL: the OpenAI mock upstream, whose GET /__mock/requests lists what it received
- SWITCHYARD_ROUTE: the route to the OpenAI mock to put in `model` (default "chat")
- SWITCHYARD_ERROR_ROUTES: JSON naming routes to the OpenAI mock that never retry, each
  on a target of its own: "rate_limited", "rate_limited_stream" and "failing"
- SWITCHYARD_DIALECTS: JSON, per other dialect ("anthropic", "bedrock", "gemini"), its
  "route", a "rate_limited_route" and a "faulty_route" (each on a target of its own,
  never retrying), and its mock's "upstream_url"

The OpenAI mock plays OpenAI through `openai_wire::chat_handler`
(tests/support/openai_wire.rs); the others play Anthropic, Bedrock and Gemini through
tests/support/dialect_mocks.rs. All of them echo the last user message, call the
first tool when tools are given, report the tool result they were sent, and fail
with status NNN when the last user message contains `[mock:status=NNN]`.
"""

import json
import os
from dataclasses import dataclass

import anthropic
import httpx
import openai
import pytest


def _required_env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        pytest.skip(f"{name} is not set: run these through `cargo test --test real_clients` or scripts/test.sh")
    return value


@pytest.fixture(scope="session")
def base_url() -> str:
    return _required_env("SWITCHYARD_BASE_URL")


@pytest.fixture(scope="session")
def route() -> str:
    return os.environ.get("SWITCHYARD_ROUTE", "chat")


@pytest.fixture(scope="session")
def gateway_url() -> str:
    return _required_env("SWITCHYARD_URL")


@pytest.fixture(scope="session")
def error_routes() -> dict[str, str]:
    return json.loads(_required_env("SWITCHYARD_ERROR_ROUTES"))


@pytest.fixture
def client(base_url: str) -> openai.OpenAI:
    # No SDK retries: a retry would hide what the gateway answered the first time.
    return openai.OpenAI(
        base_url=base_url,
        api_key=os.environ.get("SWITCHYARD_API_KEY", "sk-switchyard-test"),
        max_retries=0,
        timeout=30.0,
    )




def _anthropic_client(gateway_url: str, **options) -> anthropic.Anthropic:
    # No SDK retries, for the same reason as above.
    return anthropic.Anthropic(
        base_url=gateway_url,
        api_key=os.environ.get("SWITCHYARD_API_KEY", "sk-switchyard-test"),
        max_retries=0,
        timeout=30.0,
        **options,
    )


@pytest.fixture
def anthropic_client(gateway_url: str) -> anthropic.Anthropic:
    return _anthropic_client(gateway_url)


@pytest.fixture
def anthropic_client_as_shipped(gateway_url: str) -> anthropic.Anthropic:
    """The SDK with its own default headers, API version included."""
    return _anthropic_client(gateway_url)


class Upstream:
    """What the mock upstream received, read from its control endpoint."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    def requests(self) -> list[dict]:
        response = httpx.get(f"{self.url}/__mock/requests", timeout=10.0)
        response.raise_for_status()
        return response.json()

    def chat_requests(self) -> list[dict]:
        return [r for r in self.requests() if r["path"].split("?")[0].endswith("/chat/completions")]


@pytest.fixture
def upstream() -> Upstream:
    return Upstream(_required_env("MOCK_UPSTREAM_URL"))


@dataclass(frozen=True)
class Dialect:
    """A route to a mock upstream speaking another dialect than OpenAI's."""

    name: str
    route: str
    rate_limited_route: str
    faulty_route: str
    upstream: Upstream

    def last_body(self) -> dict:
        requests = self.upstream.requests()
        assert requests, f"the {self.name} mock received nothing"
        return requests[-1]["body"]

    def tools_sent(self, body: dict) -> list[tuple[str, dict]]:
        """(name, JSON schema) of each tool in a request body of this dialect."""
        if self.name == "anthropic":
            return [(t["name"], t["input_schema"]) for t in body.get("tools", [])]
        if self.name == "bedrock":
            tools = body.get("toolConfig", {}).get("tools", [])
            return [(t["toolSpec"]["name"], t["toolSpec"]["inputSchema"]["json"]) for t in tools if "toolSpec" in t]
        declarations = [d for tool in body.get("tools", []) for d in tool.get("functionDeclarations", [])]
        return [(d["name"], d.get("parametersJsonSchema", d.get("parameters"))) for d in declarations]

    def tool_result_key(self, call_id: str, function_name: str) -> str:
        """How the mock names a tool result in its answer: Gemini matches results to
        calls by function name, the others by id."""
        return function_name if self.name == "gemini" else call_id


DIALECTS = ("anthropic", "bedrock", "gemini")


@pytest.fixture(scope="session")
def dialects() -> dict[str, Dialect]:
    raw = json.loads(_required_env("SWITCHYARD_DIALECTS"))
    return {
        name: Dialect(
            name=name,
            route=entry["route"],
            rate_limited_route=entry["rate_limited_route"],
            faulty_route=entry["faulty_route"],
            upstream=Upstream(entry["upstream_url"]),
        )
        for name, entry in raw.items()
    }


@pytest.fixture(params=DIALECTS)
def dialect(request, dialects: dict[str, Dialect]) -> Dialect:
    return dialects[request.param]
