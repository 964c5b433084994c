"""The deploy comment never claims more than was applied, and offers /rollback only when it helps."""

from __future__ import annotations

from mergeway.kube.apply import DeployResult
from mergeway.kube.changeset import ObjectDiff, ObjectRef, Plan
from mergeway.report.deploy import DeployReport, failures_of, render_deploy

BEFORE, AFTER = "a" * 40, "b" * 40


def item(name: str, action: str = "create") -> ObjectDiff:
    return ObjectDiff(ObjectRef("", "ConfigMap", "shop", name), action)  # type: ignore[arg-type]


def report(result: DeployResult) -> str:
    done = DeployReport("staging", AFTER, AFTER, state="failure", result=result, previous_sha=BEFORE)
    assert done.failures == tuple(failures_of(result))  # read from the result, which the report does not keep
    return render_deploy(done, limit=65_536)


def test_a_partial_apply_lists_what_was_and_was_not_applied_and_offers_rollback():
    a, b, c = item("a"), item("b", "update"), item("c")
    result = DeployResult(plan=Plan([a, b, c]), applied=[a], failed=[(b, "admission webhook denied it")])
    body = report(result)
    assert "**Partly applied: 1 of 3 change(s) applied, 2 not.**" in body
    assert "Applied: `ConfigMap/shop/a`" in body
    assert "Not applied: `ConfigMap/shop/b`, `ConfigMap/shop/c`" in body
    assert "| ConfigMap/shop/b | admission webhook denied it |" in body
    assert "/rollback" in body


def test_a_failure_before_anything_was_applied_says_so_and_offers_no_rollback():
    a = item("a")
    body = report(DeployResult(plan=Plan([a]), failed=[(a, "forbidden")]))
    assert f"**Nothing was applied: 1 object(s) failed to apply; `staging` still runs {BEFORE}.**" in body
    assert "/rollback" not in body and "Partly applied" not in body
