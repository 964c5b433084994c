"""A job stuck past its time limit is stopped and says so on the PR, instead of holding a worker."""

from __future__ import annotations

import pytest

from tests.fixtures.services import TEST_GITHUB_SECRET, queued_jobs
from tests.fixtures.waiting import wait_for

pytestmark = [pytest.mark.faults, pytest.mark.redis]


def test_a_preview_stuck_past_its_time_limit_is_stopped_and_reported(
    forge_sim, services, service_env, tmp_path, redis_client
):
    env = {
        **service_env,
        "GITHUB_API_URL": forge_sim.github_api_url,
        "GITHUB_TOKEN": forge_sim.bot_token("github"),
        "GITLAB_URL": forge_sim.gitlab_url,
        "GITLAB_TOKEN": forge_sim.bot_token("gitlab"),
        "MERGEWAY_CACHE_DIR": str(tmp_path / "cache"),
        "MERGEWAY_PREVIEW_TIME_LIMIT_SECONDS": "30",  # soft limit at 15 s
        "MERGEWAY_FORGE_TIMEOUT_SECONDS": "120",
    }
    web = services.web(env)
    worker = services.worker(env)
    forge_sim.set_webhook("github", f"{web.url}/webhooks/github", TEST_GITHUB_SECRET)
    repo = forge_sim.create_repo("github", "acme/stuck", {"README.md": "x"})
    # The forge hangs on the job's first call for far longer than the job may run.
    forge_sim.inject("github", method="GET", path=r"/pulls/\d+$", delay=90, times=1)
    pr = forge_sim.open_pr(repo, "f", files={"a.txt": "b"})

    status = wait_for(
        lambda: (s := forge_sim.latest_status(repo, pr.head_sha, "mergeway/preview")) and s,
        timeout=60,
        message="the preview's not-finished status",
    )
    assert status.state == "error"
    assert status.description == "Not finished: it ran longer than its time limit"
    [comment] = wait_for(
        lambda: [c for c in forge_sim.list_comments(repo, pr.number) if "<!-- mergeway:preview:job -->" in c.body],
        timeout=15,
        message="the not-finished comment",
    )
    assert "Mergeway could not finish this preview" in comment.body and "Traceback" not in comment.body
    worker.wait_log(lambda r: r.get("msg") == "preview job stopped at its time limit", timeout=5)
    assert queued_jobs(redis_client) == []
    assert worker.running
