"""Deployments in the forge's own Environments view, through the real chain.

Merge in the forge simulator → webhook → web → Redis → worker → local cluster; then read what the
forge shows: GitHub's Deployments and their statuses, GitLab's deployments and environments.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
import redis

from tests.e2e.test_deployment_record import checkout, merged
from tests.fixtures.e2e import Stack, StackFactory
from tests.security.guard_support import DEPLOY_MARKER, allow, deployed, protected
from tools.forgesim import SimRepo
from tools.forgesim.deployments import SimDeployment

pytestmark = pytest.mark.cluster
DEPLOY = "mergeway/deploy/staging"
URL = "https://staging.example.com/"
#: States a deployment ends in, on GitHub and on GitLab.
ENDED = {"success", "failure", "error", "inactive", "failed", "canceled"}


def configmap(name: str, value: int) -> str:
    return f'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  v: "{value}"\n'


def ended(stack: Stack, repo: SimRepo, environment: str, sha: str, *, timeout: float = 120) -> SimDeployment:
    """The one deployment of ``sha`` to ``environment``, once in a final state."""

    def final() -> SimDeployment | None:
        store = stack.sim.github_deployments if repo.forge == "github" else stack.sim.gitlab_deployments
        found = [d for d in store.of(repo, environment) if d.sha == sha]
        assert len(found) <= 1, f"{len(found)} deployments of {sha[:12]} to {environment}"
        state = found[0].state if found and repo.forge == "github" else (found[0].status if found else "")
        return found[0] if state in ENDED else None

    return stack.wait(final, timeout=timeout, message=f"a final deployment of {sha[:12]} to {environment}")


def two_environments(stack: Stack, forge: str) -> SimRepo:
    environments: list[dict[str, Any]] = [
        {"name": "staging", "path": "deploy", "cluster": "local", "namespace": stack.namespace, "url": URL},
        {"name": "qa", "path": "qa", "cluster": "local", "namespace": stack.namespace},
    ]
    files: dict[str, str | None] = {"deploy/a.yaml": configmap("a", 0), "qa/b.yaml": configmap("b", 0)}
    return stack.repo(files, forge=forge, environments=environments)


def test_each_merge_is_one_github_deployment_per_environment_and_the_previous_one_turns_inactive(stack: Stack):
    repo = two_environments(stack, "github")
    first_pr, first = merged(stack, repo, "one", {"deploy/a.yaml": configmap("a", 1), "qa/b.yaml": configmap("b", 1)})
    ended(stack, repo, "staging", first)
    ended(stack, repo, "qa", first)
    second_pr, second = merged(stack, repo, "two", {"deploy/a.yaml": configmap("a", 2)})
    latest = ended(stack, repo, "staging", second)
    ended(stack, repo, "qa", second)

    everything = stack.sim.github_deployments.of(repo)
    assert Counter((d.environment, d.sha) for d in everything) == {
        ("staging", first): 1,
        ("qa", first): 1,
        ("staging", second): 1,
        ("qa", second): 1,
    }
    previous = ended(stack, repo, "staging", first)
    assert (latest.ref, latest.task, latest.payload) == (second, "deploy", {"ref": "main", "pull_request": second_pr})
    assert [s.state for s in latest.statuses] == ["queued", "in_progress", "success"]
    assert latest.statuses[-1].description.startswith(f"Deployed {second[:12]}")
    assert latest.statuses[-1].environment_url == URL
    comment = stack.only_comment(repo, second_pr, DEPLOY_MARKER)
    assert latest.statuses[-1].log_url.endswith(f"#issuecomment-{comment.id}")
    assert previous.payload["pull_request"] == first_pr
    assert [s.state for s in previous.statuses] == ["queued", "in_progress", "success", "inactive"]
    qa = [d for d in everything if d.environment == "qa"]
    assert [d.state for d in qa] == ["inactive", "success"] and qa[-1].statuses[-1].environment_url == ""
    # What it costs: one create and three statuses per deploy (GitHub's auto_inactive does the rest).
    assert len(stack.sim.api_requests("github", "POST", r"/deployments$")) == 4
    assert len(stack.sim.api_requests("github", "POST", r"/deployments/\d+/statuses$")) == 12


def test_each_merge_is_one_gitlab_deployment_per_environment_with_the_environment_url(stack: Stack):
    repo = two_environments(stack, "gitlab")
    for value in (1, 2):
        _, sha = merged(stack, repo, f"v{value}", {"deploy/a.yaml": configmap("a", value)})
        for environment in ("staging", "qa"):
            deployment = ended(stack, repo, environment, sha)
            assert (deployment.ref, deployment.status, deployment.tag) == ("main", "success", False)
    assert len(stack.sim.gitlab_deployments.of(repo)) == 4
    staging = stack.sim.gitlab_deployments.environment(repo, "staging")
    qa = stack.sim.gitlab_deployments.environment(repo, "qa")
    assert staging is not None and staging.external_url == URL
    assert qa is not None and qa.external_url == ""


def test_a_failed_rollout_on_gitlab_ends_failed(make_stack: StackFactory):
    stack = make_stack(MERGEWAY_HEALTH_TIMEOUT_SECONDS="30")
    repo = stack.repo(forge="gitlab")
    _, bad = merged(stack, repo, "v1", {"deploy/checkout.yaml": checkout(1, simulate="not-ready")})
    assert ended(stack, repo, "staging", bad, timeout=150).status == "failed"
    assert stack.status(repo, bad, DEPLOY).state == "failed"


def test_a_failed_rollout_ends_failure_with_the_reason_and_the_previous_deployment_stays(make_stack: StackFactory):
    stack = make_stack(MERGEWAY_HEALTH_TIMEOUT_SECONDS="30")
    repo = stack.repo()
    _, good = merged(stack, repo, "v1", {"deploy/checkout.yaml": checkout(1)})
    assert ended(stack, repo, "staging", good).state == "success"
    _, bad = merged(stack, repo, "v2", {"deploy/checkout.yaml": checkout(2, simulate="not-ready")})

    failed = ended(stack, repo, "staging", bad, timeout=150)
    assert failed.state == "failure", failed.statuses[-1].description
    description = failed.statuses[-1].description
    assert description.startswith("Deploy failed:") and f"Deployment/{stack.namespace}/checkout" in description
    assert stack.status(repo, bad, DEPLOY).description == description  # the commit status says the same
    assert ended(stack, repo, "staging", good).state == "success"  # what still runs stays the active one


def test_a_held_destructive_change_ends_error_saying_it_waits_for_an_allowance(stack: Stack):
    repo = deployed(stack, {"deploy/keep.yaml": protected("keep")})
    pr = stack.sim.open_pr(repo, "drop", files={"deploy/keep.yaml": None})
    stack.sim.merge(repo, pr)
    sha = stack.sim.pr(repo, pr.number).merge_commit_sha
    assert sha

    held = ended(stack, repo, "staging", sha)
    assert held.state == "error"
    description = held.statuses[-1].description
    assert description.startswith("Held: 1 destructive change(s) wait for an allowance")
    assert "/allow-destructive staging" in description
    assert "held back" in stack.status(repo, sha, DEPLOY).description

    # An allowance after the merge deploys again: the same deployment moves on to success.
    stack.sim.set_permission(repo, "carol", "write")
    allow(stack, repo, pr, "carol")

    def released() -> SimDeployment | None:
        [deployment] = [d for d in stack.sim.github_deployments.of(repo, "staging") if d.sha == sha]
        return deployment if deployment.state == "success" else None

    done = stack.wait(released, timeout=150, message="the held deployment to succeed once allowed")
    assert [s.state for s in done.statuses][-4:] == ["error", "queued", "in_progress", "success"]
    assert [d.state for d in stack.sim.github_deployments.of(repo, "staging")] == ["inactive", "success"]


def test_a_superseded_deploy_ends_inactive_and_the_newest_merge_is_the_active_one(
    stack: Stack, redis_client: redis.Redis
):
    repo = stack.repo({"deploy/a.yaml": configmap("a", 0)})
    # Both merges wait for the environment, as behind a long deploy: whichever job runs first
    # deploys the newest commit, so the older merge is superseded.
    lock = redis_client.lock("mergeway:lock:deploy:local:staging", timeout=300, thread_local=False)
    assert lock.acquire(blocking=False)
    try:
        _, older = merged(stack, repo, "one", {"deploy/a.yaml": configmap("a", 1)})
        _, newer = merged(stack, repo, "two", {"deploy/b.yaml": configmap("b", 1)})

        def both_queued() -> bool:
            found = {d.sha: d.state for d in stack.sim.github_deployments.of(repo, "staging")}
            return found.get(older) == "queued" and found.get(newer) == "queued"

        stack.wait(both_queued, timeout=90, message="both deployments queued behind the environment lock")
    finally:
        lock.release()

    superseded = ended(stack, repo, "staging", older)
    assert superseded.state == "inactive"
    assert superseded.statuses[-1].description.startswith(f"Superseded by {newer[:12]}, which includes this merge")
    active = ended(stack, repo, "staging", newer)
    assert active.state == "success"
    assert ended(stack, repo, "staging", older).state == "inactive"  # a late outcome never retires the newer one


def test_a_rollback_deploys_as_a_normal_deployment_of_the_revert_commit(stack: Stack):
    repo = stack.repo({"deploy/a.yaml": configmap("a", 0)})
    stack.sim.set_permission(repo, "alice", "write")
    number, sha = merged(stack, repo, "one", {"deploy/a.yaml": configmap("a", 1)})
    assert ended(stack, repo, "staging", sha).state == "success"
    stack.sim.comment(repo, number, "/rollback", author="alice")

    def revert_pr() -> Any:
        found = [p for p in stack.sim.list_prs(repo) if p.head_ref.startswith("mergeway/revert-")]
        return found[0] if found else None

    revert = stack.wait(revert_pr, timeout=90, message="the revert pull request")
    stack.sim.merge(repo, revert)
    revert_sha = stack.sim.pr(repo, revert.number).merge_commit_sha
    assert revert_sha

    reverted = ended(stack, repo, "staging", revert_sha)
    assert (reverted.state, reverted.ref, reverted.payload["pull_request"]) == ("success", revert_sha, revert.number)
    assert ended(stack, repo, "staging", sha).state == "inactive"
