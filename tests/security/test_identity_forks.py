"""A pull request whose fork was deleted is still a fork: its content is never rendered.

GitHub reports ``head.repo: null`` once the fork is gone. Treating that as "same repository" let a
stranger's commits be rendered and dry-run with the worker's credentials.
"""

from __future__ import annotations

import pytest

from tests.fixtures.e2e import Stack
from tests.security.identity_support import files, held_webhooks

pytestmark = pytest.mark.cluster
MARKER = "<!-- mergeway:preview:staging -->"
CONTEXT = "mergeway/preview/staging"


def test_a_pr_from_a_deleted_fork_is_not_rendered(stack: Stack) -> None:
    repo = stack.repo()
    with held_webhooks(stack, "github"):
        pr = stack.sim.open_pr(repo, "from-fork", files=files("from-mallory"), fork_owner="mallory", author="mallory")
    stack.sim.delete_fork(repo, pr)
    assert stack.sim.github.pr_json(pr, stack.sim.github_api_url, stack.sim.github_url)["head"]["repo"] is None

    # A writer asks for a preview: the content is still a stranger's.
    stack.sim.comment(repo, pr, "/preview", author="alice")

    status = stack.status(repo, pr.head_sha, CONTEXT)
    assert (status.state, status.description) == (
        "error",
        "Not previewed: pull requests from forks are not dry-run (MERGEWAY_ALLOW_FORK_PREVIEWS)",
    )
    body = stack.only_comment(repo, pr.number, MARKER).body
    assert "comes from a fork" in body
    assert "to add" not in body and "from-mallory" not in body  # nothing was rendered
