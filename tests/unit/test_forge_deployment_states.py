"""How each way a deploy ends reads in the forge's Environments view (mergeway/report/forge_deployment.py).

The end-to-end tests (tests/e2e/test_forge_deployments.py) see most of these through the real chain;
the refusals before the cluster (policy, render, lock) are cheapest to pin here.
"""

from __future__ import annotations

from mergeway.report.deploy import Applied, DeployReport
from mergeway.report.forge_deployment import update_for

SHA, NEWER = "a" * 40, "b" * 40


def test_a_deploy_refused_before_the_cluster_is_an_error_with_the_reason() -> None:
    refused = DeployReport("staging", SHA, SHA, state="failure", error="refused by the policy: kind Secret")
    update = update_for(refused, ref="main", pr=7)
    assert (update.state, update.sha, update.ref, update.pr) == ("error", SHA, "main", 7)
    assert "refused by the policy" in update.description


def test_a_failed_apply_is_a_failure_and_a_newer_head_deployed_retires_this_merge() -> None:
    applied = Applied(counts=(("changed", 1),), failed=1, problems=(("Deployment/shop/web", "image pull"),))
    failed = DeployReport("staging", SHA, SHA, state="failure", applied=applied, failures=("Deployment/shop/web",))
    assert update_for(failed, ref="main").state == "failure"
    newer = DeployReport("staging", SHA, NEWER, state="success", applied=Applied(counts=(("changed", 1),)))
    retired = update_for(newer, ref="main")
    assert retired.state == "inactive" and retired.description.startswith(f"Superseded by {NEWER[:12]}")
    own = DeployReport("staging", SHA, SHA, state="success", applied=Applied(counts=(("changed", 1),)))
    assert update_for(own, ref="main", environment_url="https://s.example/").environment_url == "https://s.example/"
    assert update_for(own, ref="main").state == "success"


def test_a_merge_waiting_at_a_gate_is_queued_with_why_and_retires_when_a_newer_merge_replaces_it() -> None:
    waiting = DeployReport("prod", SHA, state="waiting", waiting="locked by @alice: incident 42")
    update = update_for(waiting, ref="main")
    assert (update.state, update.description) == ("queued", "Waiting: locked by @alice: incident 42")
    replaced = DeployReport("prod", SHA, NEWER, state="superseded", note="replaced while waiting")
    assert update_for(replaced, ref="main").state == "inactive"
