"""A GitLab merge request from a fork, through the whole chain.

GitLab reports a fork's merge request with the fork as its ``source`` project (its own id, path and
git URLs). By default its content is untrusted and never rendered, whoever asks; an operator can
allow fork previews, and then the preview is of the merge request's own commit, fetched from the
configured GitLab (``refs/merge-requests/N/head``), never from a URL the payload names.
"""

from __future__ import annotations

import pytest

from tests.fixtures.e2e import FINAL, Stack, StackFactory
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
MARKER = "<!-- mergeway:preview:staging -->"
CONTEXT = "mergeway/preview/staging"
EVENT = "Merge Request Hook"
NAME = "acme/platform/shop"
NOT_PREVIEWED = "Not previewed: pull requests from forks are not dry-run (MERGEWAY_ALLOW_FORK_PREVIEWS)"
#: Every place a GitLab hook names a URL of a project (``source``, ``target``, ``project``, ``repository``).
URL_KEYS = ("git_http_url", "git_ssh_url", "http_url", "ssh_url", "url", "web_url", "homepage")


def assert_from_fork(payload: dict[str, object], target_id: int) -> None:
    """The delivery describes a fork's merge request the way GitLab does."""
    attrs = payload["object_attributes"]
    assert isinstance(attrs, dict)
    assert attrs["target_project_id"] == target_id and attrs["source_project_id"] != target_id
    assert attrs["source"]["path_with_namespace"] == "mallory/shop"


def test_a_gitlab_fork_merge_request_is_not_rendered_even_when_a_developer_asks(stack: Stack) -> None:
    repo = stack.repo(forge="gitlab", name=NAME)
    stack.sim.set_permission(repo, "alice", "developer")
    mr = stack.sim.open_pr(repo, "from-fork", files=files("from-mallory"), fork_owner="mallory", author="mallory")
    assert_from_fork(recorded_payload(stack, "gitlab", EVENT), repo.id)

    status = stack.status(repo, mr.head_sha, CONTEXT)
    assert (status.state, status.description) == ("failed", NOT_PREVIEWED)  # GitLab has no "error" state
    body = stack.only_comment(repo, mr.number, MARKER).body
    assert "comes from a fork" in body and "MERGEWAY_ALLOW_FORK_PREVIEWS=true" in body
    assert "to add" not in body and "from-mallory" not in body  # nothing was rendered

    # A developer's `/preview` does not make the fork's content trusted.
    before = len(stack.sim.list_statuses(repo, mr.head_sha, CONTEXT))
    stack.sim.comment(repo, mr, "/preview", author="alice")
    stack.wait(
        lambda: len(stack.sim.list_statuses(repo, mr.head_sha, CONTEXT)) >= before + 2,
        message="the preview asked for by the developer",
    )
    again = stack.status(repo, mr.head_sha, CONTEXT)
    assert (again.state, again.description) == ("failed", NOT_PREVIEWED)
    body = stack.only_comment(repo, mr.number, MARKER).body
    assert "comes from a fork" in body and "to add" not in body and "from-mallory" not in body


def test_allowed_fork_previews_render_the_merge_requests_own_commit_from_the_configured_forge(
    make_stack: StackFactory, trap: Trap
) -> None:
    stack = make_stack(MERGEWAY_ALLOW_FORK_PREVIEWS="true")
    repo = stack.repo(forge="gitlab", name=NAME)
    with held_webhooks(stack, "gitlab"):
        mr = stack.sim.open_pr(repo, "from-fork", files=files("from-mallory"), fork_owner="mallory", author="mallory")
    payload = recorded_payload(stack, "gitlab", EVENT)
    assert_from_fork(payload, repo.id)
    # Whoever sends the hook points every project URL in it at a host outside the configured forge.
    point_at(payload, f"{trap.url}/mallory/shop.git", URL_KEYS)
    assert deliver(stack, "gitlab", EVENT, payload)["status"] == "queued"

    def outcome() -> str | None:
        final = stack.sim.latest_status(repo, mr.head_sha, CONTEXT)
        return "trap" if trap.requests else "status" if final is not None and final.state in FINAL else None

    stack.wait(outcome, timeout=90, message="the preview, or a request to the payload's URL")
    leaked = [(path, "Authorization" in headers) for path, headers in trap.requests]
    assert leaked == [], f"git contacted the payload's URL (path, with credentials): {leaked}"
    status = stack.status(repo, mr.head_sha, CONTEXT)
    assert status.state == "success", status.description
    assert status.description.startswith("1 to add"), status.description
    body = stack.only_comment(repo, mr.number, MARKER).body
    assert f"`ConfigMap/{stack.namespace}/settings`" in body and "comes from a fork" not in body
    assert "+  greeting: from-mallory" in body, body  # the fork's commit, as the merge request has it
    fetched = [r.path for r in stack.sim.git_requests(repo)]
    assert fetched, "the merge request was fetched from the configured GitLab"
