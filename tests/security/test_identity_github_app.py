"""With a GitHub App, a delivery's installation must be the one that owns the repository.

One App is installed by many organisations, all sharing the App's webhook secret. A delivery that
names the victim's repository with the attacker's installation (or none) must be refused by the
worker before anything is read, rendered or written; the genuine delivery still works.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.fixtures.e2e import Stack
from tests.fixtures.services import ServiceProcess
from tests.security.identity_support import deliver, files, held_webhooks, recorded_payload

pytestmark = pytest.mark.cluster
CONTEXT = "mergeway/preview/staging"


def _job_end(worker: ServiceProcess, delivery: str) -> dict[str, Any]:
    return worker.wait_log(
        lambda r: (
            r.get("delivery_id") == delivery
            and str(r.get("msg", "")).startswith("preview job ")
            and not str(r.get("msg", "")).endswith("started")
        ),
        timeout=90,
        message=f"the end of the preview job for {delivery}",
    )


def test_a_delivery_naming_another_installation_is_refused(stack: Stack) -> None:
    app = stack.sim.create_github_app("mergeway")
    victim = stack.repo(name="acme/shop")
    attacker = stack.sim.create_repo("github", "mallory/tools")
    own_installation = stack.sim.install_app(app, victim)
    attackers_installation = stack.sim.install_app(app, attacker)
    for worker in stack.workers:
        worker.stop()
    env = {
        **stack.env,
        "GITHUB_TOKEN": "",
        "GITHUB_APP_ID": str(app.app_id),
        "GITHUB_APP_PRIVATE_KEY": app.private_key_pem,
    }
    worker = stack.services.worker(env)

    with held_webhooks(stack, "github"):
        pr = stack.sim.open_pr(victim, "change", files=files("changed"))
    genuine = recorded_payload(stack, "github", "pull_request")
    assert genuine["installation"]["id"] == own_installation

    forged = {**genuine, "installation": {"id": attackers_installation, "node_id": "forged"}}
    answer = deliver(stack, "github", "pull_request", forged, delivery="forged-installation")
    assert answer["status"] == "queued"
    end = _job_end(worker, "forged-installation")
    assert end["msg"].startswith("preview job failed")
    assert f"installation {attackers_installation} named by the delivery does not own acme/shop" in end["msg"]
    assert stack.sim.list_comments(victim, pr.number) == []
    assert stack.sim.list_statuses(victim, pr.head_sha) == []

    unnamed = {k: v for k, v in genuine.items() if k != "installation"}
    deliver(stack, "github", "pull_request", unnamed, delivery="no-installation")
    assert "names no App installation" in _job_end(worker, "no-installation")["msg"]
    assert stack.sim.list_statuses(victim, pr.head_sha) == []

    # The genuine delivery is previewed, as the App's own bot.
    deliver(stack, "github", "pull_request", genuine, delivery="genuine")
    status = stack.status(victim, pr.head_sha, CONTEXT)
    assert status.state == "success" and status.creator == "mergeway[bot]"
