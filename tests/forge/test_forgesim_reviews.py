"""Pull request reviews on the simulated GitHub, through PyGithub as a reviewer's tools would call them."""

from __future__ import annotations

import pytest
import requests
from github import Auth, Github, GithubException

from tests.fixtures.forgesim import SimHarness


def as_user(sim: SimHarness, login: str) -> Github:
    return Github(base_url=sim.github_api_url, auth=Auth.Token(sim.token_for("github", login)), retry=None)


@pytest.fixture
def pr_setup(forge_sim: SimHarness):
    repo = forge_sim.create_repo("github", "acme/shop", {"app.yaml": "replicas: 3\n"})
    forge_sim.set_permission(repo, "bob", "write")
    pr = forge_sim.open_pr(repo, "scale", files={"app.yaml": "replicas: 6\n"}, title="Scale", author="alice")
    return repo, pr


def test_an_approval_is_recorded_and_listed_like_github(forge_sim: SimHarness, pr_setup) -> None:
    repo, pr = pr_setup
    pull = as_user(forge_sim, "bob").get_repo(repo.full_name).get_pull(pr.number)

    review = pull.create_review(body="Looks good, ship it", event="APPROVE")

    assert review.state == "APPROVED"
    assert review.user.login == "bob"
    assert review.commit_id == pr.head_sha
    assert review.body == "Looks good, ship it"
    assert review.html_url.endswith(f"/pull/{pr.number}#pullrequestreview-{review.id}")
    assert review.submitted_at is not None
    # Anyone who can read the repository sees it, oldest first, and can fetch it by id.
    seen = as_user(forge_sim, "alice").get_repo(repo.full_name).get_pull(pr.number)
    assert [(r.user.login, r.state) for r in seen.get_reviews()] == [("bob", "APPROVED")]
    assert seen.get_review(review.id).state == "APPROVED"
    assert [(r.user, r.state) for r in forge_sim.list_reviews(repo, pr.number)] == [("bob", "APPROVED")]
    [request] = forge_sim.api_requests("github", "POST", r"/reviews$")
    assert request.status == 200  # GitHub answers 200 to a new review, not 201


def test_github_refuses_self_approval_and_empty_change_requests(forge_sim: SimHarness, pr_setup) -> None:
    repo, pr = pr_setup
    own = as_user(forge_sim, "alice").get_repo(repo.full_name).get_pull(pr.number)
    with pytest.raises(GithubException) as refused:
        own.create_review(event="APPROVE")
    assert refused.value.status == 422
    assert refused.value.data["errors"] == ["Can not approve your own pull request"]

    other = as_user(forge_sim, "bob").get_repo(repo.full_name).get_pull(pr.number)
    with pytest.raises(GithubException) as empty:
        other.create_review(event="REQUEST_CHANGES")
    assert empty.value.status == 422
    assert forge_sim.list_reviews(repo, pr.number) == []

    changes = other.create_review(event="REQUEST_CHANGES", body="Six is too many")
    assert changes.state == "CHANGES_REQUESTED"


def test_a_review_without_an_event_stays_pending_and_private(forge_sim: SimHarness, pr_setup) -> None:
    repo, pr = pr_setup
    bob = as_user(forge_sim, "bob").get_repo(repo.full_name).get_pull(pr.number)
    draft = bob.create_review(body="thinking about it")
    assert draft.state == "PENDING"
    assert [r.state for r in bob.get_reviews()] == ["PENDING"]
    others = as_user(forge_sim, "alice").get_repo(repo.full_name).get_pull(pr.number)
    assert list(others.get_reviews()) == []
    with pytest.raises(GithubException) as second:
        bob.create_review(body="another draft")
    assert second.value.data["errors"] == ["User can only have one pending review per pull request"]


def test_outsiders_cannot_review_a_private_repository(forge_sim: SimHarness, pr_setup) -> None:
    repo, pr = pr_setup
    token = forge_sim.token_for("github", "mallory")  # a GitHub user, not a member of acme/shop
    answer = requests.post(
        f"{forge_sim.github_api_url}/repos/{repo.full_name}/pulls/{pr.number}/reviews",
        json={"event": "APPROVE"},
        headers={"Authorization": f"token {token}"},
        timeout=10,
    )
    assert answer.status_code == 404  # GitHub hides private repositories from outsiders
    assert forge_sim.list_reviews(repo, pr.number) == []
