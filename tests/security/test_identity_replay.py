"""A captured body re-sent with new delivery ids is one job, not one per id.

``X-GitHub-Delivery`` is not covered by GitHub's signature and GitLab signs nothing, so the body's
digest is deduplicated as well as the delivery id (same TTL, one Redis round trip).
"""

from __future__ import annotations

import json
import uuid

import redis

from tests.fixtures.forgesim import SimHarness
from tests.fixtures.services import WebProcess, github_headers, gitlab_headers, queued_jobs


def test_a_replayed_body_with_new_delivery_ids_is_one_job(
    web: WebProcess, redis_client: redis.Redis, forge_sim: SimHarness
) -> None:
    for forge, event in (("github", "pull_request"), ("gitlab", "Merge Request Hook")):
        repo = forge_sim.create_repo(forge, "acme/shop")  # type: ignore[arg-type]
        forge_sim.open_pr(repo, "change", files={"deploy/a.yaml": "a: 1\n"})
        body = json.dumps(forge_sim.deliveries(forge, event)[-1].payload).encode()  # type: ignore[arg-type]
        answers = []
        for _ in range(4):
            if forge == "github":
                headers = github_headers(body, event, delivery=str(uuid.uuid4()))
            else:
                headers = gitlab_headers(event, delivery=str(uuid.uuid4()))
            answers.append(web.request("POST", f"/webhooks/{forge}", body, headers))
        assert [a[1]["status"] for a in answers] == ["queued", "duplicate", "duplicate", "duplicate"]  # type: ignore[index]
    jobs = queued_jobs(redis_client)
    assert [(j.queue, j.event["repo"]["forge"]) for j in jobs] == [("preview", "github"), ("preview", "gitlab")]
    # The body's claim lives as long as the id's.
    ttls = {
        redis_client.ttl(k) for k in redis_client.keys("mergeway:*delivery*") + redis_client.keys("mergeway:body:*")
    }
    assert ttls and all(ttl > 0 for ttl in ttls)
