"""`make demo`'s story, run as the demo runs it (tools/demo.py), with each step's outcome asserted.

The demo starts its own Redis, forge simulator, web service and worker; only the cluster comes from
the test session, and the namespace is the test's own, so a `make demo` running at the same time
does not interfere.
"""

from __future__ import annotations

import io
import os
import uuid
from pathlib import Path

import pytest
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from tests.fixtures.cluster import KubeCluster
from tests.fixtures.waiting import wait_for
from tools import demo


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return not Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z")


def _namespace_going(core: k8s.CoreV1Api, name: str) -> bool:
    try:
        return core.read_namespace(name).metadata.deletion_timestamp is not None
    except ApiException as exc:
        return exc.status == 404


@pytest.mark.cluster
def test_the_demo_story_reaches_every_expected_state(kube_cluster: KubeCluster, tmp_path: Path):
    namespace = f"t-demo-{uuid.uuid4().hex[:6]}"
    out = io.StringIO()
    with demo.environment(
        namespace=namespace, logs=tmp_path / "logs", kubeconfig=kube_cluster.kubeconfig, out=out
    ) as stack:
        outcomes = demo.run_story(stack)
        pids = list(stack.pids)
    story = out.getvalue()

    failed = [f"{o.title}: {o.reason}" for o in outcomes if not o.ok]
    assert not failed, story
    assert [o.key for o in outcomes] == [key for key, _, _ in demo.STORY]
    facts = {o.key: o.facts for o in outcomes}

    live = facts["live"]
    assert (live["preview"], live["deploy"]) == ("success", "success")
    assert live["ready"] == {"frontend": "3/3", "redis-master": "1/1", "redis-replica": "2/2"}

    scale = facts["scale"]
    assert scale["changes"] == ["replicas: 3 → 6"]  # exactly this, and nothing else
    assert (scale["review"]["by"], scale["review"]["state"]) == ("bob", "APPROVED")
    assert (scale["deploy"], scale["ready"]) == ("success", "6/6")

    crash = facts["crash"]
    assert (crash["preview"], crash["deploy"]) == ("success", "failure")
    assert f"image: {demo.GOOD_IMAGE} → {demo.BAD_IMAGE}" in crash["changes"]
    assert crash["names_deployment"] and crash["suggests_rollback"]
    assert crash["crashing_pods"] > 0

    back = facts["rollback"]
    assert back["revert_title"].startswith('Revert "')
    assert f"image: {demo.BAD_IMAGE} → {demo.GOOD_IMAGE}" in back["changes"]
    assert (back["deploy"], back["ready"], back["image"]) == ("success", "6/6", demo.GOOD_IMAGE)
    # main's history: the initial commit, then each pull request's commit and its merge.
    assert len(back["history"]) == 9
    assert "Merge pull request #4" in back["history"][0] and "Revert" in back["history"][1]

    # The narration carries the evidence a reader needs.
    assert "replicas: 3 → 6" in story and "CrashLoopBackOff" in story and "/rollback" in story

    # It cleans up after itself: processes stopped, namespace going away, logs kept.
    wait_for(lambda: not any(_alive(p) for p in pids), timeout=30, message="the demo's processes to stop")
    core = k8s.CoreV1Api(kube_cluster.api_client())
    wait_for(lambda: _namespace_going(core, namespace), timeout=30, message=f"{namespace} to be deleted")
    for name in demo.LOG_FILES:
        assert (tmp_path / "logs" / name).stat().st_size > 0, name


def test_the_story_stops_at_the_first_step_that_fails_and_says_why(monkeypatch: pytest.MonkeyPatch):
    ran: list[str] = []

    def ok(_: demo.Demo) -> dict[str, object]:
        ran.append("ok")
        return {"fine": True}

    def broken(_: demo.Demo) -> dict[str, object]:
        ran.append("broken")
        raise demo.StepFailed("frontend should be 6/6 ready, kubectl shows 4/6")

    def never(_: demo.Demo) -> dict[str, object]:
        ran.append("never")
        return {}

    monkeypatch.setattr(demo, "STORY", [("a", "First", ok), ("b", "Second", broken), ("c", "Third", never)])
    lines: list[str] = []
    stack = demo.Demo(None, None, "ns", Path("kubeconfig"), Path("logs"), lines.append)  # type: ignore[arg-type]

    outcomes = demo.run_story(stack)

    assert ran == ["ok", "broken"]
    assert [(o.key, o.ok) for o in outcomes] == [("a", True), ("b", False)]
    assert outcomes[1].reason == "frontend should be 6/6 ready, kubectl shows 4/6"
    closing = "\n".join(demo.summary(stack, outcomes, 1.0))
    assert "why: frontend should be 6/6 ready, kubectl shows 4/6" in closing
    assert "3. Third" in closing and "not run" in closing
