"""Transient forge failures: retried with backoff, honouring Retry-After, giving up clearly."""

from __future__ import annotations

import time

import pytest

from mergeway.forge import ForgeRateLimitError, ForgeUnavailableError
from mergeway.forge.retry import rate_limit_wait
from tests.fixtures.forgesim import SimHarness
from tools.forgesim import SimRepo

NAMES = {"github": "acme/shop", "gitlab": "platform/shop"}


@pytest.fixture(params=["github", "gitlab"])
def repo(request: pytest.FixtureRequest, forge_sim: SimHarness) -> SimRepo:
    return forge_sim.create_repo(request.param, NAMES[request.param])


def _pr_path(repo: SimRepo) -> str:
    return r"/pulls/1$" if repo.forge == "github" else r"/merge_requests/1$"


def test_429_with_retry_after_is_retried_and_succeeds(forge_sim: SimHarness, repo: SimRepo) -> None:
    pr = forge_sim.open_pr(repo, "feature", files={"a": "1"})
    forge_sim.inject(repo.forge, status=429, method="GET", path=_pr_path(repo), headers={"Retry-After": "1"})
    started = time.monotonic()
    info = forge_sim.forge(repo).get_pull_request(pr.number)
    elapsed = time.monotonic() - started
    assert info.number == pr.number
    assert elapsed >= 1.0, "the client waited as long as Retry-After asked"
    statuses = [r.status for r in forge_sim.api_requests(repo.forge, "GET", _pr_path(repo))]
    assert statuses[:2] == [429, 200]


def test_429_on_a_write_is_retried(forge_sim: SimHarness, repo: SimRepo) -> None:
    pr = forge_sim.open_pr(repo, "feature", files={"a": "1"})
    forge_sim.inject(repo.forge, status=429, method="POST", path=r"/(comments|notes)$", headers={"Retry-After": "1"})
    forge_sim.forge(repo).upsert_comment(pr.number, "<!-- m -->", "body")
    assert len(forge_sim.list_comments(repo, pr.number)) == 1
    assert [r.status for r in forge_sim.api_requests(repo.forge, "POST", r"/(comments|notes)$")] == [429, 201]


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_is_retried(forge_sim: SimHarness, repo: SimRepo, status: int) -> None:
    pr = forge_sim.open_pr(repo, "feature", files={"a": "1"})
    forge_sim.inject(repo.forge, status=status, path=_pr_path(repo), times=2)
    assert forge_sim.forge(repo).get_pull_request(pr.number).number == pr.number
    assert [r.status for r in forge_sim.api_requests(repo.forge, "GET", _pr_path(repo))] == [status, status, 200]


def test_persistent_5xx_gives_up_with_a_clear_error(forge_sim: SimHarness, repo: SimRepo) -> None:
    pr = forge_sim.open_pr(repo, "feature", files={"a": "1"})
    forge_sim.inject(repo.forge, status=503, path=_pr_path(repo), times=100)
    with pytest.raises(ForgeUnavailableError) as err:
        forge_sim.forge(repo, forge_retries=2).get_pull_request(pr.number)
    assert "503" in str(err.value) and repo.full_name in str(err.value)
    assert len(forge_sim.api_requests(repo.forge, "GET", _pr_path(repo))) == 3  # first try + 2 retries


def test_long_rate_limit_is_not_slept_through(forge_sim: SimHarness, repo: SimRepo) -> None:
    pr = forge_sim.open_pr(repo, "feature", files={"a": "1"})
    forge_sim.inject(repo.forge, status=429, path=_pr_path(repo), headers={"Retry-After": "3600"}, times=100)
    with pytest.raises(ForgeRateLimitError) as err:
        forge_sim.forge(repo).get_pull_request(pr.number)
    if repo.forge == "github":  # python-gitlab does not keep response headers on its errors
        assert err.value.retry_after == pytest.approx(3600, abs=5)
    # One request and an error: the client neither slept through the hour nor asked again.
    assert len(forge_sim.api_requests(repo.forge, "GET", _pr_path(repo))) == 1


def test_github_secondary_rate_limit_403_is_retried(forge_sim: SimHarness) -> None:
    repo = forge_sim.create_repo("github", "acme/limits")
    pr = forge_sim.open_pr(repo, "feature", files={"a": "1"})
    forge_sim.inject(
        "github",
        status=403,
        path=r"/pulls/1$",
        headers={"Retry-After": "1"},
        body={"message": "You have exceeded a secondary rate limit. Please wait a few minutes."},
    )
    assert forge_sim.forge(repo).get_pull_request(pr.number).number == pr.number
    assert [r.status for r in forge_sim.api_requests("github", "GET", r"/pulls/1$")] == [403, 200]


def test_slow_responses_within_the_timeout_succeed(forge_sim: SimHarness, repo: SimRepo) -> None:
    pr = forge_sim.open_pr(repo, "feature", files={"a": "1"})
    forge_sim.inject(repo.forge, delay=1.0, path=_pr_path(repo), times=100)
    # Slow but well inside the timeout: answered the first time, not abandoned and retried.
    assert forge_sim.forge(repo, forge_timeout_seconds=30.0).get_pull_request(pr.number).number == pr.number
    assert [r.status for r in forge_sim.api_requests(repo.forge, "GET", _pr_path(repo))] == [200]


def test_a_response_slower_than_the_timeout_is_retried(forge_sim: SimHarness, repo: SimRepo) -> None:
    pr = forge_sim.open_pr(repo, "feature", files={"a": "1"})
    # The first request is held (not answered at all) until released below: it is slower than any
    # timeout. Its answer would be a 503: a client that waited for it would see it and retry after it.
    held = forge_sim.inject(repo.forge, status=503, path=_pr_path(repo), times=1, hold=True)
    try:
        info = forge_sim.forge(repo, forge_timeout_seconds=1.0).get_pull_request(pr.number)
        assert info.number == pr.number
        # The simulator records a request when it answers: the held one has not been, so the only
        # answer is the retry's, sent after the client gave up waiting.
        assert held.hits == 1
        assert [r.status for r in forge_sim.api_requests(repo.forge, "GET", _pr_path(repo))] == [200]
    finally:
        held.release()


def test_rate_limit_wait_parsing() -> None:
    now = 1_000_000.0
    assert rate_limit_wait({"Retry-After": "7"}, now) == 7
    assert rate_limit_wait({"retry-after": "Thu, 01 Jan 1970 00:00:10 GMT"}, 0.0) == 10
    assert rate_limit_wait({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(now) + 30)}, now) == 31
    assert rate_limit_wait({"RateLimit-Remaining": "0", "RateLimit-Reset": str(int(now) + 5)}, now) == 6
    assert rate_limit_wait({"X-RateLimit-Remaining": "12", "X-RateLimit-Reset": str(int(now) + 30)}, now) is None
    assert rate_limit_wait({}, now) is None
