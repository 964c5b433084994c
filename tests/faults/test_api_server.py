"""API-server faults on a real connection: 5xx, 429, conflicts, resets and a restart mid-deploy."""

from __future__ import annotations

from pathlib import Path

import pytest
from kubernetes import client as k8s

from tests.faults.apiproxy import ApiProxy
from tests.faults.conftest import DEPLOY, DEPLOY_MARKER, PREVIEW, PREVIEW_MARKER, config_map, slow_deployment
from tests.faults.test_worker_host import applied_commit

pytestmark = [pytest.mark.faults, pytest.mark.cluster]


@pytest.fixture
def proxy(kube_cluster, tmp_path: Path):
    proxy = ApiProxy(kube_cluster.kubeconfig, tmp_path / "proxy")
    proxy.up()
    yield proxy
    proxy.down()


def test_preview_and_deploy_ride_out_api_server_faults_and_a_restart(chain_factory, proxy: ApiProxy):
    chain = chain_factory(workers=1, KUBECONFIG=str(proxy.kubeconfig), MERGEWAY_HEALTH_TIMEOUT_SECONDS="120")
    repo = chain.repo()
    files = {"deploy/app.yaml": slow_deployment("app", "12s"), "deploy/cm.yaml": config_map("settings", mode="a")}

    # Preview: every kind of transient answer, each more than once.
    faults = [
        proxy.fail(503, times=2, match=r"dryRun"),
        proxy.fail(429, times=2, match=r"dryRun", headers={"Retry-After": "1"}),
        proxy.fail(500, times=1, match=r"^GET ", message="etcdserver: leader changed"),
        proxy.reset(times=2, match=r"^GET "),
    ]
    pr = chain.sim.open_pr(repo, "app", files=files)
    preview = chain.status(repo, pr.head_sha, PREVIEW, timeout=120)
    assert preview.state == "success", preview.description
    assert preview.description.startswith("2 to add")
    chain.only_comment(repo, pr.number, PREVIEW_MARKER)
    assert all(f.remaining == 0 for f in faults), [(f.kind, f.status, f.hits) for f in faults]

    # Deploy: conflicts on the ApplySet parent, then the API server restarts the moment the
    # Deployment is applied (that request is cut) and is gone for 10 s.
    parent = r"/configmaps/mergeway-[^/?]*staging"
    conflict = proxy.fail(
        409,
        times=2,
        match=rf"^PATCH .*{parent}",
        message=(
            'Operation cannot be fulfilled on configmaps "x": the object has been modified; '
            "please apply your changes to the latest version and try again"
        ),
    )
    restart = proxy.restart_on(r"^PATCH [^?]*/deployments/app\?(?!.*dryRun)", seconds=10)
    chain.sim.merge(repo, pr)
    sha = chain.sim.pr(repo, pr.number).merge_commit_sha
    apps = k8s.AppsV1Api(chain.cluster.api_client())
    status = chain.status(repo, sha, DEPLOY, timeout=120)
    assert status.state == "success", status.description
    assert conflict.remaining == 0 and restart.remaining == 0
    assert "✅ Deployed" in chain.only_comment(repo, pr.number, DEPLOY_MARKER).body
    assert applied_commit(chain, repo) == sha
    assert apps.read_namespaced_deployment("app", chain.namespace).status.available_replicas == 1
    assert [s.state for s in chain.sim.list_statuses(repo, sha, DEPLOY)].count("success") == 1


def test_client_retries_only_what_is_transient_and_gives_up_in_bounded_time(proxy: ApiProxy, namespace: str):
    from mergeway.kube.client import KubeClient, KubeError

    client = KubeClient.from_kubeconfig(str(proxy.kubeconfig), retry_seconds=15)
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    proxy.fail(503, times=3, match=r"^POST ")
    proxy.fail(429, times=1, match=r"^POST ", headers={"Retry-After": "1"})
    proxy.reset(times=2, match=r"^POST ")
    created = client.request("POST", path, body={"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}})
    assert created["metadata"]["name"] == "a"
    assert [status for method, _, status in proxy.requests if method == "POST"] == [503, 503, 503, 429, 0, 0, 201]

    # The API server's verdict on an object is not retried: it is what the PR must show.
    before = len(proxy.requests)
    with pytest.raises(KubeError) as refused:
        client.request("POST", path, body={"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "A_"}})
    assert refused.value.status == 422 and len(proxy.requests) == before + 1

    # Down for longer than the retry budget: a clear error, not a hang.
    proxy.down()
    with pytest.raises(KubeError) as unreachable:
        KubeClient.from_kubeconfig(str(proxy.kubeconfig), retry_seconds=3).request("GET", path)
    assert unreachable.value.reason == "Unreachable"
