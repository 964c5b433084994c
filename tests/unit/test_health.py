"""Health rules from object dicts, without a cluster: when a deploy calls an object ready, waits, or fails."""

from __future__ import annotations

from typing import Any

import pytest

from mergeway.kube.health import Health, assess


def deployment(
    wanted: int | None = 3, *, generation: int = 2, observed: int | None = 2, **status: Any
) -> dict[str, Any]:
    full = {"updatedReplicas": 3, "readyReplicas": 3, "availableReplicas": 3, "replicas": 3, **status}
    if observed is not None:
        full["observedGeneration"] = observed
    spec = {} if wanted is None else {"replicas": wanted}
    return {"kind": "Deployment", "metadata": {"name": "web", "generation": generation}, "spec": spec, "status": full}


def condition(kind: str, type_: str, status: str = "True", **extra: Any) -> dict[str, Any]:
    return {"kind": kind, "metadata": {}, "status": {"conditions": [{"type": type_, "status": status, **extra}]}}


def test_a_rolled_out_deployment_is_current() -> None:
    assert assess(deployment()) == Health("current", "3 of 3 replicas available")


@pytest.mark.parametrize(
    ("status", "message"),
    [
        ({"updatedReplicas": 1}, "1 of 3 replicas updated"),
        ({"replicas": 5}, "2 old replica(s) pending termination"),
        ({"availableReplicas": 2}, "2 of 3 replicas available"),
        ({"readyReplicas": 2}, "3 of 3 replicas available"),
    ],
)
def test_a_deployment_mid_rollout_is_in_progress_saying_how_far(status: dict[str, Any], message: str) -> None:
    assert assess(deployment(**status)) == Health("in_progress", message)


def test_a_deployment_past_its_progress_deadline_has_failed_with_the_controllers_words() -> None:
    obj = deployment(updatedReplicas=1)
    obj["status"]["conditions"] = [
        {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded", "message": 'web" timed out'}
    ]
    health = assess(obj)
    assert health.state == "failed"
    assert "ProgressDeadlineExceeded" in health.message and 'web" timed out' in health.message


def test_a_deployment_without_replicas_wants_one() -> None:
    obj = deployment(None, updatedReplicas=1, readyReplicas=1, availableReplicas=1, replicas=1)
    assert assess(obj) == Health("current", "1 of 1 replicas available")


def test_status_of_an_older_generation_says_nothing_about_the_change() -> None:
    assert assess(deployment(generation=3, observed=2)) == Health(
        "in_progress", "controller has not observed the latest change yet"
    )
    assert assess(deployment(observed=None)) == Health("in_progress", "waiting for the controller")


def test_an_object_being_deleted_is_not_ready_whatever_its_status() -> None:
    obj = deployment()
    obj["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    assert assess(obj) == Health("in_progress", "being deleted")


def test_statefulset_rolling_update_waits_for_the_new_revision_but_on_delete_does_not() -> None:
    def sts(strategy: str) -> dict[str, Any]:
        status = {"observedGeneration": 1, "readyReplicas": 2, "updatedReplicas": 2}
        status |= {"currentRevision": "db-1", "updateRevision": "db-2"}
        spec = {"replicas": 2, "updateStrategy": {"type": strategy}}
        return {"kind": "StatefulSet", "metadata": {"generation": 1}, "spec": spec, "status": status}

    assert assess(sts("RollingUpdate")) == Health("in_progress", "rolling update in progress")
    assert assess(sts("OnDelete")) == Health("current", "2 replicas ready")


def test_daemonset_counts_pods_against_those_scheduled() -> None:
    status = {"observedGeneration": 1, "desiredNumberScheduled": 4, "updatedNumberScheduled": 4}
    status |= {"numberAvailable": 3, "numberReady": 4}
    obj = {"kind": "DaemonSet", "metadata": {"generation": 1}, "status": status}
    assert assess(obj) == Health("in_progress", "3 of 4 pods available")
    obj["status"]["numberAvailable"] = 4
    assert assess(obj) == Health("current", "4 pods available")


def test_jobs_fail_complete_or_run() -> None:
    failed = condition("Job", "Failed", message="BackoffLimitExceeded")
    failed["status"]["observedGeneration"] = 1  # jobs are judged by their conditions once observed
    assert assess(failed) == Health("failed", "job failed: BackoffLimitExceeded")
    complete = condition("Job", "Complete")
    complete["status"]["observedGeneration"] = 1
    assert assess(complete) == Health("current", "job complete")


def test_pods_crds_and_claims_need_no_observed_generation() -> None:
    assert assess({"kind": "Pod", "status": {"phase": "Failed"}}) == Health("failed", "pod failed")
    assert assess({"kind": "Pod", "status": {"phase": "Succeeded"}}).state == "current"
    assert assess(condition("Pod", "Ready")) == Health("current", "pod ready")
    assert assess({"kind": "Pod", "status": {}}) == Health("in_progress", "pod pending")
    assert assess(condition("CustomResourceDefinition", "Established")) == Health("current", "established")
    assert assess(condition("CustomResourceDefinition", "Established", "False")).state == "in_progress"
    assert assess({"kind": "PersistentVolumeClaim", "status": {"phase": "Bound"}}) == Health("current", "bound")
    assert assess({"kind": "PersistentVolumeClaim", "status": {"phase": "Pending"}}).state == "in_progress"


def test_other_kinds_are_current_unless_their_conditions_say_otherwise() -> None:
    assert assess({"kind": "ConfigMap", "metadata": {"name": "c"}, "data": {}}) == Health("current")
    assert assess(condition("Widget", "Ready", "False", message="waiting for the bucket")) == Health(
        "in_progress", "waiting for the bucket"
    )
    assert assess(condition("Widget", "Stalled", message="quota exceeded")) == Health("failed", "quota exceeded")
