"""Git talks only to the configured forge: a payload's ``clone_url`` / ``git_http_url`` is never used.

Anyone holding the webhook secret could otherwise point the worker at their own server and receive
the forge token in git's ``Authorization`` header. Here that server is a local HTTP server on
127.0.0.1 that records every request; it must see none.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.fixtures.e2e import Stack
from tests.fixtures.waiting import wait_for
from tests.security.identity_support import deliver, files, held_webhooks, recorded_payload

pytestmark = pytest.mark.cluster
CONTEXT = "mergeway/preview/staging"
FINAL = ("success", "failure", "error")


@dataclass
class Trap:
    url: str
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)


@pytest.fixture
def trap() -> Iterator[Trap]:
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


def _point_at(payload: Any, url: str, keys: tuple[str, ...]) -> None:
    """Every URL field named in ``keys``, anywhere in the payload, now names ``url``."""
    if isinstance(payload, dict):
        for key, value in payload.items():
            if key in keys and isinstance(value, str):
                payload[key] = url
            else:
                _point_at(value, url, keys)
    elif isinstance(payload, list):
        for item in payload:
            _point_at(item, url, keys)


@pytest.mark.parametrize(
    ("forge", "event", "keys"),
    [
        ("github", "pull_request", ("clone_url", "git_url")),
        ("gitlab", "Merge Request Hook", ("git_http_url",)),
    ],
)
def test_payload_clone_url_receives_no_request_and_no_token(
    stack: Stack, trap: Trap, forge: str, event: str, keys: tuple[str, ...]
) -> None:
    repo = stack.repo(forge=forge)
    with held_webhooks(stack, forge):
        pr = stack.sim.open_pr(repo, "change", files=files("changed"))
    payload = recorded_payload(stack, forge, event)
    _point_at(payload, f"{trap.url}/{repo.full_name}.git", keys)

    answer = deliver(stack, forge, event, payload)
    assert answer["status"] == "queued"

    def outcome() -> str | None:
        if trap.requests:
            return "trap"
        status = stack.sim.latest_status(repo, pr.head_sha, CONTEXT)
        return "status" if status is not None and status.state in FINAL else None

    wait_for(outcome, timeout=90, message="the preview to finish")
    leaked = [(path, "Authorization" in headers) for path, headers in trap.requests]
    assert leaked == [], f"git contacted the payload's URL (path, with credentials): {leaked}"
    # The preview ran from the configured forge instead.
    assert stack.sim.git_requests(repo), "the repository was fetched from the configured forge"
