"""The chart installed for real (helm install into the local cluster; KWOK runs the pods).

An operator's day one and day two: install with the documented Secrets, a Redis URL, a policy and
namespaced RBAC; the Deployments become Available; an upgrade with a changed value rolls both; an
uninstall leaves nothing behind.
"""

from __future__ import annotations

import pytest

from tests.ship.chart import CHART, helm
from tests.ship.conftest import create_documented_secrets

pytestmark = pytest.mark.cluster


def _env_of_pods(kube, namespace, release, component):
    pods = kube.core().list_namespaced_pod(
        namespace, label_selector=f"app.kubernetes.io/instance={release},app.kubernetes.io/component={component}"
    )
    return [
        {e.name: e.value for e in p.spec.containers[0].env} for p in pods.items if p.metadata.deletion_timestamp is None
    ]


def test_install_upgrade_uninstall(kube_cluster, kube, namespace, make_namespace):
    target = make_namespace("shop")
    release = "mw-life"
    create_documented_secrets(kube, namespace, redis_secret=False)
    # The API server's Pod Security admission refuses any pod below the "restricted" profile here,
    # so the Deployments only become Available if the chart's security contexts meet it.
    kube.core().patch_namespace(
        namespace, {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "restricted"}}}
    )
    common = [
        "--namespace", namespace,
        "--set", "redis.url=redis://redis.example.svc:6379/0",
        # The password given as a value: the chart stores it in a Secret of its own (removed on uninstall).
        "--set", "redis.existingSecret=", "--set", "redis.password=0123456789abcdef",
        "--set", f"rbac.namespaces={{{target}}}",
        "--set", "policy.rules[0].repositories={github:acme/*}",
        "--set", "policy.rules[0].clusters={in-cluster}",
        "--set", f"policy.rules[0].namespaces={{{target}}}",
    ]  # fmt: skip
    installed = helm("install", release, str(CHART), *common, kubeconfig=kube_cluster.kubeconfig)
    assert installed.returncode == 0, installed.stderr
    assert f"github: http://{release}.{namespace}.svc/webhooks/github" in installed.stdout  # NOTES.txt
    assert f"The worker may deploy into: {target}." in installed.stdout
    assert kube.wait_available(namespace, release) == [f"{release}-beat", f"{release}-web", f"{release}-worker"]
    assert all(env["LOG_LEVEL"] == "INFO" for env in _env_of_pods(kube, namespace, release, "worker"))

    upgraded = helm(
        "upgrade", release, str(CHART), *common, "--set", "logLevel=DEBUG", kubeconfig=kube_cluster.kubeconfig
    )
    assert upgraded.returncode == 0, upgraded.stderr
    kube.wait_available(namespace, release)
    for component in ("web", "worker", "beat"):
        envs = _env_of_pods(kube, namespace, release, component)
        assert envs and all(env["LOG_LEVEL"] == "DEBUG" for env in envs), f"{component} pods were not rolled"

    left_before = kube.labelled(release, [namespace, target])
    assert any(item.startswith("Role ") for item in left_before)  # the check below can see Roles
    removed = helm("uninstall", release, "--namespace", namespace, "--wait", kubeconfig=kube_cluster.kubeconfig)
    assert removed.returncode == 0, removed.stderr
    from tests.fixtures.waiting import wait_for

    wait_for(
        lambda: not kube.labelled(release, [namespace, target]),
        timeout=90,
        interval=0.5,
        message=f"nothing of {release} left (still: {kube.labelled(release, [namespace, target])})",
    )
