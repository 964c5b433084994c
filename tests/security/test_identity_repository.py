"""The repository a job acts for is the forge API's, not the payload's.

GitLab addresses a project by id, while checkout, policy and ApplySet names use its path. A
delivery that pairs one project's id with another's path (the attacker's code under the victim's
name) is refused by the worker before anything runs.
"""

from __future__ import annotations

import pytest

from tests.fixtures.e2e import Stack
from tests.security.identity_support import deliver, files, held_webhooks, recorded_payload

pytestmark = pytest.mark.cluster


def test_a_gitlab_delivery_whose_path_is_not_its_projects_is_refused(stack: Stack) -> None:
    victim = stack.repo(forge="gitlab", name="acme/shop")
    attacker = stack.repo(forge="gitlab", name="mallory/shop")
    with held_webhooks(stack, "gitlab"):
        pr = stack.sim.open_pr(attacker, "change", files=files("from-mallory"))
    payload = recorded_payload(stack, "gitlab", "Merge Request Hook")
    assert payload["project"]["id"] == attacker.id
    payload["project"]["path_with_namespace"] = victim.full_name

    answer = deliver(stack, "gitlab", "Merge Request Hook", payload)
    assert answer["status"] == "queued"
    worker = stack.workers[0]
    end = worker.wait_log(
        lambda r: (
            r.get("job_id") == answer["job_id"]
            and str(r.get("msg", "")).startswith(("preview job failed", "preview job succeeded"))
        ),
        timeout=90,
        message="the end of the preview job",
    )
    assert end["msg"].startswith("preview job failed: IdentityError")
    assert "names project 'acme/shop'" in end["msg"]
    assert stack.sim.list_statuses(attacker, pr.head_sha) == []
    assert stack.sim.list_comments(attacker, pr.number) == []
