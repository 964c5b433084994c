"""``/preview`` needs the same permission as ``/rollback``; ``/help`` stays open to everyone.

``/preview`` renders the PR and dry-runs it with the worker's cluster credentials: a commenter
without write access must get a clear answer and nothing else.
"""

from __future__ import annotations

import pytest

from tests.fixtures.e2e import Stack
from tests.fixtures.waiting import wait_for
from tests.security.identity_support import files, held_webhooks

pytestmark = pytest.mark.cluster
MARKER = "<!-- mergeway:preview:staging -->"


@pytest.mark.parametrize("forge", ["github", "gitlab"])
def test_preview_by_a_reader_renders_nothing_and_says_why(stack: Stack, forge: str) -> None:
    repo = stack.repo(forge=forge)
    stack.sim.set_permission(repo, "bob", "read")  # GitLab: Reporter, below Developer
    with held_webhooks(stack, forge):
        pr = stack.sim.open_pr(repo, "change", files=files("changed"))

    stack.sim.comment(repo, pr, "/preview", author="bob")

    def reply() -> str | None:
        bodies = [c.body for c in stack.sim.list_comments(repo, pr.number) if c.author == "mergeway-bot"]
        return next((b for b in bodies if "only users with write access" in b), None)

    text = wait_for(reply, timeout=60, message="the refusal reply")
    assert "@bob" in text and "`/preview`" in text and "Nothing was run." in text
    assert stack.sim.list_statuses(repo, pr.head_sha) == []  # nothing previewed, not even "pending"
    assert stack.marked(repo, pr.number, MARKER) == []

    # /help is not restricted.
    stack.sim.comment(repo, pr, "/help", author="bob")
    wait_for(lambda: stack.marked(repo, pr.number, "<!-- mergeway:help -->"), timeout=60, message="the /help answer")
    assert stack.sim.list_statuses(repo, pr.head_sha) == []
