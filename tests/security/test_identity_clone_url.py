"""Git talks only to the configured forge: a payload's ``clone_url`` / ``git_http_url`` is never used.

Anyone holding the webhook secret could otherwise point the worker at their own server and receive
the forge token in git's ``Authorization`` header. Here that server is a local HTTP server on
127.0.0.1 that records every request; it must see none.
"""

from __future__ import annotations

import pytest

from tests.fixtures.e2e import Stack
from tests.fixtures.waiting import wait_for
from tests.security.identity_support import (
    Trap,
    deliver,
    files,
    held_webhooks,
    point_at,
    recorded_payload,
    trap_server,  # noqa: F401 (the ``trap`` fixture)
)

pytestmark = pytest.mark.cluster
CONTEXT = "mergeway/preview/staging"
FINAL = ("success", "failure", "error")


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
    point_at(payload, f"{trap.url}/{repo.full_name}.git", keys)

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
