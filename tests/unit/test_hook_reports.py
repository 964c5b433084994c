"""What the person who merged reads about hooks: a failed pre-deploy hook says nothing was applied and
why, a failed post-deploy hook offers `/rollback`, reasons are masked, and previews list hooks apart."""

from __future__ import annotations

from mergeway.kube.apply import DeployResult
from mergeway.kube.changeset import ObjectDiff, ObjectRef, Plan, PlannedHook, SkippedHook
from mergeway.kube.discovery import Resource
from mergeway.kube.hooks import HookRun
from mergeway.redaction import register_secret
from mergeway.report.deploy import DeployReport, render_deploy
from mergeway.report.markdown import ROLLBACK_HINT
from mergeway.report.planned import planned_of

WEB = ObjectRef("apps", "Deployment", "shop", "web")
JOB = Resource("batch", "v1", "Job", "jobs", True)
TOKEN = "db-password-7f3a9c21e5"


def report(result: DeployResult) -> DeployReport:
    return DeployReport("staging", "a" * 40, "a" * 40, state="failure", result=result, previous_sha="b" * 40)


def test_a_failed_pre_deploy_hook_says_nothing_was_applied_and_why() -> None:
    result = DeployResult(Plan([ObjectDiff(WEB, "update")]))
    result.hooks = [HookRun("pre-deploy", "Job/shop/migrate", "failed", "job failed (BackoffLimitExceeded): x")]
    out = report(result)
    body = render_deploy(out, limit=65_536)
    assert "**Nothing was applied: a pre-deploy hook failed; `staging` still runs" in body
    assert "❌ runs before the rollout: `Job/shop/migrate` failed: job failed (BackoffLimitExceeded): x" in body
    assert ROLLBACK_HINT not in body
    assert out.status() == (
        "failure",
        "Deploy failed: Job/shop/migrate (pre-deploy hook): job failed (BackoffLimitExceeded): x",
    )


def test_a_failed_post_deploy_hook_offers_rollback_and_its_reason_is_masked() -> None:
    register_secret(TOKEN)
    item = ObjectDiff(WEB, "update")
    result = DeployResult(Plan([item]), applied=[item])
    result.hooks = [
        HookRun("pre-deploy", "Job/shop/migrate", "succeeded"),
        HookRun("post-deploy", "Job/shop/smoke", "failed", f"container smoke exited 1: cannot log in with {TOKEN}"),
    ]
    body = render_deploy(report(result), limit=65_536)
    assert ROLLBACK_HINT in body
    assert "✅ runs before the rollout: `Job/shop/migrate` succeeded" in body
    assert "❌ runs after the environment is healthy: `Job/shop/smoke` failed: container smoke exited 1" in body
    assert TOKEN not in body


def test_a_preview_lists_hooks_by_phase_and_those_never_applied() -> None:
    plan = Plan()
    desired = {"metadata": {"name": "x"}}
    plan.hooks = [
        PlannedHook(
            ObjectRef("batch", "Job", "shop", "smoke"),
            ("post-deploy",),
            0,
            frozenset(),
            "helm.sh/hook: post-upgrade",
            "c",
            JOB,
            desired,
        ),
        PlannedHook(
            ObjectRef("batch", "Job", "shop", "migrate"),
            ("pre-deploy",),
            -5,
            frozenset(),
            "helm.sh/hook: pre-upgrade",
            "c",
            JOB,
            desired,
        ),
    ]
    plan.skipped = [SkippedHook(ObjectRef("", "Pod", "shop", "t"), "helm.sh/hook: test", "never applied on deploy", "")]
    assert list(planned_of(plan).hooks) == [
        "#### Hooks (created fresh on every deploy, not diffed)",
        "",
        "- runs before the rollout: `Job/shop/migrate` (`helm.sh/hook: pre-upgrade`, weight -5)",
        "- runs after the environment is healthy: `Job/shop/smoke` (`helm.sh/hook: post-upgrade`)",
        "- not applied on deploy: `Pod/shop/t` (`helm.sh/hook: test`: never applied on deploy)",
        "",
    ]
