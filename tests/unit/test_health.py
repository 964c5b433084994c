"""Health rules from object dicts, without a cluster: when a deploy calls an object ready, waits, or fails.

Kind by kind, with a document per state, in test_health_kinds.py; here the rules every kind shares
and the steps of a Deployment's rollout.
"""

from __future__ import annotations

from typing import Any

import pytest

from mergeway.kube.health import Health, assess

DONE = [
    {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
    {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"},
]


def deployment(
    wanted: int | None = 3, *, generation: int = 2, observed: int | None = 2, **status: Any
) -> dict[str, Any]:
    full = {"updatedReplicas": 3, "readyReplicas": 3, "availableReplicas": 3, "replicas": 3, "conditions": DONE}
    full |= status
    if observed is not None:
        full["observedGeneration"] = observed
    spec: dict[str, Any] = {"progressDeadlineSeconds": 600}
    if wanted is not None:
        spec["replicas"] = wanted
    metadata = {"name": "web", "generation": generation}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": metadata, "spec": spec, "status": full}


def test_a_rolled_out_deployment_is_current() -> None:
    assert assess(deployment()) == Health("current", "3 of 3 replicas available")


@pytest.mark.parametrize(
    ("status", "message"),
    [
        ({"updatedReplicas": 1}, "1 of 3 replicas updated"),
        ({"replicas": 2}, "2 of 3 replicas created"),
        ({"replicas": 5}, "2 old replica(s) pending termination"),
        ({"availableReplicas": 2}, "2 of 3 updated replicas available"),
        ({"readyReplicas": 2}, "2 of 3 replicas ready"),
        ({"conditions": DONE[:1]}, "the controller has not reported the rollout complete yet"),
        ({"conditions": DONE[1:]}, "not available yet"),
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


def test_a_standard_condition_speaks_for_any_kind_before_its_own_rule() -> None:
    stalled = deployment()
    stalled["status"]["conditions"] = [*DONE, {"type": "Stalled", "status": "True", "reason": "Quota", "message": "x"}]
    assert assess(stalled) == Health("failed", "stalled (Quota): x")
    busy = deployment()
    busy["status"]["conditions"] = [*DONE, {"type": "Reconciling", "status": "True", "reason": "Resizing"}]
    assert assess(busy) == Health("in_progress", "reconciling (Resizing)")


def test_a_kind_is_judged_by_its_group_too() -> None:
    foreign = deployment(observed=None)
    foreign["apiVersion"] = "apps.example.com/v1"  # a custom kind that shares a built-in's name
    assert assess(foreign) == Health("current")
    legacy = deployment(observed=None)
    legacy["apiVersion"] = "extensions/v1beta1"
    assert assess(legacy) == Health("in_progress", "waiting for the controller")
