"""Helpers for the identity tests: send deliveries an attacker could forge, and hold webhooks back.

An attacker holding a webhook secret can sign any body; these helpers do exactly that with the test
secrets, through the real web service.
"""

from __future__ import annotations

import contextlib
import copy
import json
from collections.abc import Iterator
from typing import Any

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
