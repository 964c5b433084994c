"""Helpers for the identity tests: send deliveries an attacker could forge, and hold webhooks back.

An attacker holding a webhook secret can sign any body; these helpers do exactly that with the test
secrets, through the real web service.
"""

from __future__ import annotations

import contextlib
import copy
import http.server
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.fixtures.e2e import Stack
from tests.fixtures.services import TEST_GITHUB_SECRET, TEST_GITLAB_SECRET, github_headers, gitlab_headers

CONFIGMAP = """apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  greeting: {greeting}
"""


def files(greeting: str = "hello") -> dict[str, str | None]:
    return {"deploy/settings.yaml": CONFIGMAP.format(greeting=greeting)}


@contextlib.contextmanager
def held_webhooks(stack: Stack, forge: str) -> Iterator[None]:
    """Deliveries inside the block are only recorded (as if the hook were switched off), not sent."""
    stack.sim.set_webhook(forge, None)  # type: ignore[arg-type]
    try:
        yield
    finally:
        secret = TEST_GITHUB_SECRET if forge == "github" else TEST_GITLAB_SECRET
        stack.sim.set_webhook(forge, f"{stack.web.url}/webhooks/{forge}", secret)  # type: ignore[arg-type]


def recorded_payload(stack: Stack, forge: str, event: str) -> dict[str, Any]:
    """A copy of the newest recorded delivery of ``event`` (e.g. ``pull_request``, ``Merge Request Hook``)."""
    found = stack.sim.deliveries(forge, event)  # type: ignore[arg-type]
    assert found, f"no {event} delivery recorded"
    return copy.deepcopy(found[-1].payload)


def deliver(stack: Stack, forge: str, event: str, payload: dict[str, Any], *, delivery: str | None = None) -> Any:
    """Sign ``payload`` with the forge's webhook secret and POST it to the web service; returns the answer."""
    body = json.dumps(payload).encode()
    headers = github_headers(body, event, delivery=delivery) if forge == "github" else gitlab_headers(event)
    status, answer = stack.web.request("POST", f"/webhooks/{forge}", body, headers)
    assert status in (200, 202), answer
    return answer


@dataclass
class Trap:
    """A local HTTP server standing for a host outside the configured forge: it records every request."""

    url: str
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)


@pytest.fixture(name="trap")
def trap_server() -> Iterator[Trap]:
    seen: list[tuple[str, dict[str, str]]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append((self.path, dict(self.headers)))
            self.send_response(404)
            self.end_headers()

        def do_POST(self) -> None:
            self.do_GET()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield Trap(f"http://127.0.0.1:{server.server_port}", seen)
    server.shutdown()
    server.server_close()


def point_at(payload: Any, url: str, keys: tuple[str, ...]) -> None:
    """Every URL field named in ``keys``, anywhere in the payload, now names ``url``."""
    if isinstance(payload, dict):
        for key, value in payload.items():
            if key in keys and isinstance(value, str):
                payload[key] = url
            else:
                point_at(value, url, keys)
    elif isinstance(payload, list):
        for item in payload:
            point_at(item, url, keys)
