"""A poison message: a repository whose preview kills the worker every time is given up and reported.

With ``acks_late`` + ``reject_on_worker_lost`` a job whose pool process dies is redelivered at once;
without a cap, a hostile repository (a YAML alias bomb that gets the pool process OOM-killed, say)
keeps one worker busy dying forever and its PR says "Previewing…" for ever. The worker here is the
real one, with one test-only addition (tests/security/crashhook): rendering an environment holding
``oom.yaml`` SIGKILLs the pool process, as the OOM killer would.
"""

from __future__ import annotations

import os

import pytest

from tests.faults.conftest import PREVIEW, PREVIEW_MARKER, config_map, job_records
from tests.faults.conftest import chain_factory as chain_factory  # the fixture, shared with tests/faults
from tests.fixtures.services import queued_jobs
from tests.fixtures.waiting import wait_for

pytestmark = [pytest.mark.faults, pytest.mark.cluster]
HOOK = os.path.join(os.path.dirname(__file__), "crashhook")


def test_a_job_that_kills_its_worker_is_given_up_after_three_attempts_and_reported(chain_factory, redis_client):
    chain = chain_factory(workers=0)
    worker = chain.worker("victim", env={"PYTHONPATH": f"{HOOK}:{chain.env['PYTHONPATH']}"})
    repo = chain.repo({"deploy/base.yaml": config_map("base", v="1")})
    pr = chain.sim.open_pr(repo, "bomb", files={"deploy/oom.yaml": config_map("bomb", v="1")})

    given_up = worker.wait_log(lambda r: r.get("msg", "").startswith("preview job given up"), timeout=120)
    assert given_up["level"] == "ERROR"
    status = chain.status(repo, pr.head_sha, PREVIEW, timeout=30)
    assert status.state == "error"
    assert status.description.startswith("Not finished: the worker running it stopped 3 times")
    body = chain.only_comment(repo, pr.number, PREVIEW_MARKER).body
    assert "Mergeway could not finish this preview" in body and "stopped 3 times" in body
    assert "Traceback" not in body
    # Exactly three runs, each killed; then nothing left to redeliver: no loop.
    assert len(job_records([worker], "preview job started")) == 3
    assert worker.logs().count("SIGKILL") >= 3
    wait_for(
        lambda: queued_jobs(redis_client) == [] and redis_client.zcard("unacked_index") == 0,
        timeout=30,
        message="the given-up job to be acknowledged",
    )
    assert worker.running

    # The same worker still serves everyone else, and the PR recovers once the bomb is gone.
    chain.sim.push(repo, pr, {"deploy/oom.yaml": None})
    fixed = chain.sim.pr(repo, pr.number).head_sha
    status = chain.status(repo, fixed, PREVIEW, timeout=90)
    assert status.state == "success", status.description
    body = wait_for(
        lambda: (b := chain.only_comment(repo, pr.number, PREVIEW_MARKER).body) and "could not finish" not in b and b,
        timeout=30,
        message="the preview comment to be replaced",
    )
    assert "Mergeway could not finish" not in body
