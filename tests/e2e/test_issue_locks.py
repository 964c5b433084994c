"""``/lock`` and ``/unlock`` on the drift issue, through the real chain (forge simulator → web → Redis →
worker → local cluster): the drift issue is where an incident is often first seen, so the lock can be
taken there; it holds merges exactly as one taken on a pull request, the answers go on the issue, and
users without write access are refused there too."""

from __future__ import annotations

import pytest
import redis

from mergeway.gates import Locks
from mergeway.jobs.applysets import owner_identity
from tests.e2e.test_drift_issue import DEPLOY, deployed, kubectl, open_issue
from tests.e2e.test_gates import cm, merge, value, waiting_status
from tests.fixtures.e2e import Stack
from tools.forgesim import SimIssue, SimRepo

pytestmark = pytest.mark.cluster


def issue_reply(stack: Stack, repo: SimRepo, issue: SimIssue, contains: str) -> str:
    """The bot's reply on ``issue`` that says ``contains``."""

    def found() -> str | None:
        comments = stack.sim.list_issue_comments(repo, issue.number)
        return next((c.body for c in comments if c.author == "mergeway-bot" and contains in c.body), None)

    return stack.wait(found, timeout=90, message=f"a reply saying {contains!r} on issue #{issue.number}")


def test_lock_on_the_drift_issue_holds_a_merge_and_unlock_on_it_deploys(stack: Stack, redis_client: redis.Redis):
    repo, number = deployed(stack)
    kubectl(stack, "scale", "deployment/web", "--replicas=3")
    issue = open_issue(stack, repo, number)

    stack.sim.issue_comment(repo, issue, "/lock staging incident 42", author="alice")
    locked = issue_reply(stack, repo, issue, "locked `staging`")
    assert "@alice" in locked and "incident 42" in locked, locked
    repository = owner_identity(stack.sim.repository(repo))
    lock = Locks(redis_client).get(repository, "staging")
    assert lock is not None and (lock.by, lock.reason) == ("alice", "incident 42")

    merged_pr, sha = merge(stack, repo, "config", {"deploy/app.yaml": cm("app", "v1")})
    held = waiting_status(stack, repo, sha, DEPLOY)
    assert held.description == "Waiting: locked by @alice: incident 42", held.description
    body = stack.only_comment(repo, merged_pr, "<!-- mergeway:deploy:staging -->").body
    assert "locked by @alice: incident 42" in body, body
    assert value(stack, "app") is None, "a merge was applied to an environment locked on the drift issue"

    stack.sim.issue_comment(repo, issue, "/unlock staging", author="alice")
    unlocked = issue_reply(stack, repo, issue, "unlocked `staging`")
    assert "1 waiting merge(s) deploys now" in unlocked, unlocked
    deployed_status = stack.status(repo, sha, DEPLOY, timeout=120)
    assert deployed_status.state == "success" and sha[:12] in deployed_status.description, deployed_status.description
    assert value(stack, "app") == "v1"
    assert Locks(redis_client).get(repository, "staging") is None


def test_a_readers_lock_on_the_drift_issue_is_refused(stack: Stack, redis_client: redis.Redis):
    repo, number = deployed(stack)
    kubectl(stack, "scale", "deployment/web", "--replicas=2")
    issue = open_issue(stack, repo, number)
    stack.sim.set_permission(repo, "rita", "read")

    stack.sim.issue_comment(repo, issue, "/lock staging because", author="rita")
    refusal = issue_reply(stack, repo, issue, "only users with write access")
    assert "@rita" in refusal and "`/lock`" in refusal and "Nothing was locked" in refusal, refusal
    assert Locks(redis_client).all(owner_identity(stack.sim.repository(repo))) == {}
    _, sha = merge(stack, repo, "config", {"deploy/app.yaml": cm("app", "v1")})
    assert stack.status(repo, sha, DEPLOY, timeout=120).state == "success"
    assert value(stack, "app") == "v1"


def test_lock_on_an_issue_that_is_not_the_drift_issue_says_where_it_works(stack: Stack, redis_client: redis.Redis):
    repo = stack.repo({"deploy/app.yaml": cm("app", "v0")})
    issue = stack.sim.open_issue(repo, "Checkout is slow", "Since this morning.", author="alice")

    stack.sim.issue_comment(repo, issue, "/lock staging incident 42", author="alice")
    answer = issue_reply(stack, repo, issue, "works on pull requests and on Mergeway's drift issue")
    assert "@alice" in answer and "Nothing was run" in answer, answer
    assert Locks(redis_client).all(owner_identity(stack.sim.repository(repo))) == {}
