"""``/rollback`` vouches only for its own revert, whoever got to the predictable branch first (finding 6 of issue 24).

The revert branch is named ``mergeway/revert-<n>-<sha12>``, which anyone can work out from the
merged pull request. Before this test, a pull request someone else opened from that branch (on GitLab
even from a fork) was answered with "The revert pull request is already open", and a branch pushed
there first made the revert fail. Now the bot opens its own revert from a fresh branch in both cases.
"""

from __future__ import annotations

import pytest

from tests.fixtures.e2e import Stack
from tests.security.identity_support import files, held_webhooks
from tools.forgesim import SimPR, SimRepo

pytestmark = pytest.mark.cluster
ROLLBACK = "<!-- mergeway:rollback -->"


def _merged(stack: Stack, forge: str) -> tuple[SimRepo, SimPR, str]:
    """A merged pull request (nothing deployed) and the revert branch name Mergeway would pick for it."""
    repo = stack.repo(forge=forge)
    with held_webhooks(stack, forge):
        pr = stack.sim.open_pr(repo, "change", files=files("changed"), title="Ship it")
        stack.sim.merge(repo, pr)
    merged = stack.sim.pr(repo, pr.number)
    assert merged.merge_commit_sha
    return repo, merged, f"mergeway/revert-{merged.number}-{merged.merge_commit_sha[:12]}"


def _reply(stack: Stack, repo: SimRepo, pr: SimPR) -> str:
    def answered() -> str | None:
        found = [c.body for c in stack.marked(repo, pr.number, ROLLBACK) if c.author == "mergeway-bot"]
        return found[0] if found else None

    return stack.wait(answered, timeout=90, message="the /rollback reply")


def _bot_revert(stack: Stack, repo: SimRepo, branch: str) -> SimPR:
    found = [p for p in stack.sim.list_prs(repo) if p.author == "mergeway-bot"]
    assert len(found) == 1, [(p.number, p.author, p.head_ref) for p in stack.sim.list_prs(repo)]
    assert found[0].head_ref.startswith(f"{branch}-") and found[0].fork_owner is None
    return found[0]


@pytest.mark.parametrize("forge", ["github", "gitlab"])
def test_a_planted_revert_pull_request_is_not_vouched_for(stack: Stack, forge: str) -> None:
    repo, merged, branch = _merged(stack, forge)
    with held_webhooks(stack, forge):
        if forge == "github":  # a writer's same-repository branch
            stack.sim.set_permission(repo, "mallory", "write")
            planted = stack.sim.open_pr(repo, branch, files=files("planted"), author="mallory", title="Revert")
        else:  # a stranger's fork: GitLab lists it by source branch like any other
            planted = stack.sim.open_pr(
                repo, branch, files=files("planted"), author="mallory", fork_owner="mallory", title="Revert"
            )

    stack.sim.comment(repo, merged, "/rollback", author="alice")

    text = _reply(stack, repo, merged)
    assert "already open" not in text, text
    revert = _bot_revert(stack, repo, branch)
    assert f"/{revert.number} to revert" in text and f"/{planted.number} " not in text, text
    assert stack.sim.pr(repo, planted.number).head_sha == planted.head_sha  # left alone


def test_a_pre_pushed_revert_branch_does_not_block_the_rollback(stack: Stack) -> None:
    repo, merged, branch = _merged(stack, "github")
    planted = stack.sim.commit(repo, branch, files("planted"), author="alice", wait=False)

    stack.sim.comment(repo, merged, "/rollback", author="alice")

    text = _reply(stack, repo, merged)
    assert "opened" in text and "could not be reverted" not in text, text
    revert = _bot_revert(stack, repo, branch)
    assert f"/{revert.number} to revert" in text
    assert stack.sim.head(repo, branch) == planted  # the other branch is not overwritten
