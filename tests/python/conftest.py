"""Fixtures for the real-client tests.

These tests drive a running Switchyard gateway with the official client SDKs. They
are started by `cargo test --test real_clients` (part of `scripts/test.sh`), which
runs the gateway in-process in front of a scripted mock upstream and passes:

- SWITCHYARD_BASE_URL: the gateway's OpenAI base URL, e.g. http://127.0.0.1:PORT/v1
- MOCK_UPSTREAM_URL: the mock upstream, whose GET /__mock/requests lists what it received
- SWITCHYARD_ROUTE: the route to put in `model` (default "chat")

The mock plays OpenAI through `openai_wire::chat_handler` (tests/support/openai_wire.rs):
it echoes the last user message, calls the first tool when tools are given, and
reports the tool result it was sent.
"""

import os

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


@pytest.fixture
def client(base_url: str) -> openai.OpenAI:
    # No SDK retries: a retry would hide what the gateway answered the first time.
    return openai.OpenAI(
        base_url=base_url,
        api_key=os.environ.get("SWITCHYARD_API_KEY", "sk-switchyard-test"),
        max_retries=0,
        timeout=30.0,
    )


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
