"""Drift checks through the real chain: merge → deploy → someone scales by hand → the scheduler's check.

The forge simulator, the web service, a worker, ``mergeway-beat`` with a short
``MERGEWAY_DRIFT_INTERVAL_SECONDS``, Redis and the local cluster: the scheduled check compares the
cluster with the commit last applied and stores what it found where the environments page reads it
(:class:`mergeway.drift.DriftStore`). The forge issue is the ``drift-issue`` work's test.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
import redis
import yaml

from mergeway.drift import DriftCheck, DriftStore
from mergeway.jobs.applysets import owner_identity
from tests.fixtures.e2e import StackFactory
from tests.fixtures.services import ServiceProcess

pytestmark = pytest.mark.cluster
DEPLOY = "mergeway/deploy/staging"


def web_deployment(replicas: int = 1) -> str:
    labels = {"app": "web"}
    return yaml.safe_dump(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web"},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"containers": [{"name": "app", "image": "example.com/web:1"}]},
                },
            },
        }
    )


def settings_map() -> str:
    return yaml.safe_dump(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}, "data": {"a": "1"}}
    )


def test_a_scheduled_check_stores_the_object_scaled_by_hand_against_the_applied_commit(
    make_stack: StackFactory, redis_client: redis.Redis
) -> None:
    stack = make_stack(MERGEWAY_DRIFT_INTERVAL_SECONDS="2")
    repo = stack.repo()
    pr = stack.sim.open_pr(
        repo, "web", files={"deploy/web.yaml": web_deployment(), "deploy/settings.yaml": settings_map()}
    )
    stack.sim.merge(repo, pr)
    sha = stack.sim.pr(repo, pr.number).merge_commit_sha
    assert sha and stack.status(repo, sha, DEPLOY, timeout=120).state == "success"
    repository = owner_identity(stack.sim.repository(repo))
    store = DriftStore(redis_client)

    beat = ServiceProcess("beat", [sys.executable, "-m", "workers.beat"], stack.env, stack.services.workdir)
    beat.start()
    stack.services.started.append(beat)

    def checked(drifted: bool) -> DriftCheck | None:
        found = store.get(repository, "staging")
        return (
            found
            if found is not None and found.commit == sha and found.drifted == drifted and not found.error
            else None
        )

    clean = stack.wait(lambda: checked(False), timeout=90, message="a scheduled check without drift")
    assert clean.objects == () and clean.requests > 0

    subprocess.run(
        [stack.cluster.kubectl, "-n", stack.namespace, "scale", "deployment/web", "--replicas=3"],
        env=stack.cluster.env(),
        check=True,
        capture_output=True,
        timeout=60,
    )
    drifted = stack.wait(
        lambda: checked(True), timeout=90, message="a scheduled check that finds the scaled Deployment"
    )
    [web] = drifted.objects
    assert (web.ref, web.state) == ("Deployment/web", "changed")
    assert [(f.path, f.live, f.git, f.manager) for f in web.fields] == [("/spec/replicas", "3", "1", "kubectl")]
    assert drifted.commit == sha  # the commit last applied

    logs = "\n".join(p.logs() for p in stack.workers)
    assert "drift check of" in logs and "1 drifted object(s)" in logs

    # A pull request that would overwrite the live change says so above its table.
    other = stack.sim.open_pr(repo, "settings", files={"deploy/settings.yaml": settings_map().replace("'1'", "'2'")})
    assert stack.status(repo, other.head_sha, "mergeway/preview/staging").state == "success"
    preview = stack.only_comment(repo, other.number, "<!-- mergeway:preview:staging -->").body
    note = next((line for line in preview.splitlines() if line.startswith("> ") and "spec.replicas" in line), "")
    assert "this PR keeps <code>1</code>" in note, preview
    assert "live <code>3</code> (set by <code>kubectl</code>), Git <code>1</code>" in note, note

    # `/drift staging` checks now and answers on the pull request.
    stack.sim.comment(repo, other, "/drift staging", author="alice")
    reply = stack.wait(
        lambda: (found := stack.marked(repo, other.number, "<!-- mergeway:drift -->")) and found[0].body,
        timeout=90,
        message="the reply to /drift",
    )
    assert "**staging**: 1 object(s) drifted from " + sha[:12] in reply, reply
    assert "<code>Deployment/web</code>" in reply and "set by <code>kubectl</code>" in reply, reply
