"""Redis killed (SIGKILL) and restarted: nothing accepted is lost, nothing answers 500, all reconnect."""

from __future__ import annotations

import pytest

from tests.faults.conftest import PREVIEW, PREVIEW_MARKER, config_map
from tests.fixtures.services import queued_jobs
from tests.fixtures.waiting import wait_for

pytestmark = [pytest.mark.faults, pytest.mark.cluster]


def last_delivery(chain, pr_number: int):
    found = [d for d in chain.sim.deliveries("github", "pull_request") if d.payload["number"] == pr_number]
    assert found, f"no delivery for #{pr_number}"
    return found[-1]


def test_redis_crash_loses_no_accepted_delivery_and_everyone_reconnects(chain_factory, redis_server):
    chain = chain_factory(workers=1)
    worker = chain.workers[0]
    repo = chain.repo({"deploy/base.yaml": config_map("base", v="1")})

    # 1. Redis dies while web and worker run. Deliveries meanwhile get 503 (the forge redelivers), never 500.
    redis_server.kill()
    assert chain.web.request("GET", "/readyz")[0] == 503
    during = chain.sim.open_pr(repo, "during", files={"deploy/a.yaml": config_map("a", v="1")})
    refused = last_delivery(chain, during.number)
    assert refused.status == 503, (refused.status, refused.response)
    redis_server.start()  # same port, same directory: the append-only file is replayed
    wait_for(lambda: chain.web.request("GET", "/readyz")[0] == 200, timeout=30, message="/readyz after the restart")
    again = chain.sim.webhooks.redeliver(refused)
    assert again.status == 202, (again.status, again.response)
    # The same worker process, reconnected on its own, runs it.
    assert chain.status(repo, during.head_sha, PREVIEW, timeout=120).state == "success"
    chain.only_comment(repo, during.number, PREVIEW_MARKER)
    assert worker.running

    # 2. A delivery answered 202 while no worker consumes, then Redis is SIGKILLed and restarted.
    worker.stop()
    accepted = chain.sim.open_pr(repo, "accepted", files={"deploy/b.yaml": config_map("b", v="1")})
    assert last_delivery(chain, accepted.number).status == 202
    assert len(queued_jobs(redis_server.client())) == 1
    redis_server.kill()
    redis_server.start()
    [job] = queued_jobs(redis_server.client())
    assert job.event["pr"]["number"] == accepted.number
    chain.worker("after-restart")
    status = chain.status(repo, accepted.head_sha, PREVIEW, timeout=120)
    assert status.state == "success" and status.description.startswith("2 to add")  # base + b
    chain.only_comment(repo, accepted.number, PREVIEW_MARKER)
    assert "Traceback" not in chain.web.logs()
    answers = {d.status for d in chain.sim.deliveries("github") if d.status is not None}
    assert answers <= {202, 503}, f"deliveries were answered {answers}"
