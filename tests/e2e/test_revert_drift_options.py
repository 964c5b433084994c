"""``/revert-drift`` re-applies with the environment's engine options, as a deploy does.

The drift check and the preview leave ``ignore:`` fields and autoscaled replicas to whoever sets
them live (:mod:`mergeway.jobs.engine_options`); re-applying the commit to revert drift must too,
or reverting an image edit would also take back a field the team said Git does not decide.
Through the real chain: forge simulator → web → Redis → worker → local cluster.
"""

from __future__ import annotations

import pytest
from kubernetes import client as k8s

from tests.e2e.test_drift_issue import DEPLOY, closed, drift_issues, kubectl, open_issue, replicas, web_deployment
from tests.fixtures.e2e import Stack

pytestmark = pytest.mark.cluster


def test_revert_drift_takes_back_the_image_and_leaves_ignored_replicas_as_set_live(stack: Stack) -> None:
    ignore = {"fields": [{"kind": "Deployment", "name": "web", "paths": ["/spec/replicas"]}]}
    env = {"name": "staging", "path": "deploy", "cluster": "local", "namespace": stack.namespace, "ignore": ignore}
    repo = stack.repo(name="acme/shop", environments=[env])
    stack.sim.set_permission(repo, "alice", "write")
    pr = stack.sim.open_pr(repo, "web", files={"deploy/web.yaml": web_deployment()})
    stack.sim.merge(repo, pr)
    sha = stack.sim.pr(repo, pr.number).merge_commit_sha or stack.sim.head(repo)
    assert stack.status(repo, sha, DEPLOY, timeout=120).state == "success"

    kubectl(stack, "scale", "deployment/web", "--replicas=3")  # Git does not decide replicas here
    kubectl(stack, "set", "image", "deployment/web", "app=example.com/web:hotfix")  # drift
    issue = open_issue(stack, repo, pr.number)
    assert "example.com/web:hotfix" in issue.body and "/spec/replicas" not in issue.body

    stack.sim.issue_comment(repo, issue, "/revert-drift", author="alice")
    closed(stack, repo, issue)
    web = k8s.AppsV1Api(stack.cluster.api_client()).read_namespaced_deployment("web", stack.namespace)
    assert web.spec.template.spec.containers[0].image == "example.com/web:1"
    assert replicas(stack) == 3
    assert len(drift_issues(stack, repo)) == 1
