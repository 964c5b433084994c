"""Helpers for the chart tests: helm as an operator runs it, and the objects a release leaves."""

from __future__ import annotations

import os
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mergeway.binaries import find
from tests.conftest import ROOT
from tests.fixtures.waiting import wait_for

CHART = ROOT / "charts" / "mergeway"
#: The cluster's minor version, for ``helm template`` without a cluster (the chart needs >=1.30).
KUBE_VERSION = "1.36.0"


def helm(*args: str, kubeconfig: Path | None = None, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """Run helm with a minimal environment (its own HOME, so no operator config leaks in)."""
    home = Path(os.environ.get("TMPDIR", "/tmp")) / "mergeway-test-helm-home"
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home)}
    if kubeconfig is not None:
        env["KUBECONFIG"] = str(kubeconfig)
    return subprocess.run([find("helm"), *args], capture_output=True, text=True, timeout=timeout, env=env, check=False)


def template(*sets: str, values: Path | None = CHART / "ci" / "values.yaml") -> subprocess.CompletedProcess[str]:
    """``helm template`` of the chart with ``--set`` overrides (no cluster needed)."""
    args = ["template", "mw", str(CHART), "--namespace", "mergeway", "--kube-version", KUBE_VERSION]
    if values is not None:
        args += ["-f", str(values)]
    for item in sets:
        args += ["--set", item]
    return helm(*args)


def release_name() -> str:
    return f"mw-{uuid.uuid4().hex[:6]}"


@dataclass
class Kube:
    """The few API calls the chart tests need, through the admin kubeconfig."""

    api_client: Any

    def core(self) -> Any:
        from kubernetes import client

        return client.CoreV1Api(self.api_client)

    def apps(self) -> Any:
        from kubernetes import client

        return client.AppsV1Api(self.api_client)

    def create_namespace(self, name: str) -> None:
        from kubernetes import client

        self.core().create_namespace(
            client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels={"mergeway.test/namespace": "true"}))
        )

    def create_secret(self, namespace: str, name: str, data: dict[str, str]) -> None:
        from kubernetes import client

        self.core().create_namespaced_secret(
            namespace, client.V1Secret(metadata=client.V1ObjectMeta(name=name), string_data=data)
        )

    def deployments_available(self, namespace: str, release: str) -> list[str] | None:
        """The release's Deployment names once every one is fully rolled out and Available, else None."""
        items = (
            self.apps()
            .list_namespaced_deployment(namespace, label_selector=f"app.kubernetes.io/instance={release}")
            .items
        )
        if not items:
            return None
        for d in items:
            status, want = d.status, d.spec.replicas or 0
            conditions = {c.type: c.status for c in status.conditions or []}
            if (
                conditions.get("Available") != "True"
                or (status.observed_generation or 0) < d.metadata.generation
                or (status.updated_replicas or 0) != want
                or (status.available_replicas or 0) != want
                or (status.replicas or 0) != want
            ):
                return None
        return sorted(d.metadata.name for d in items)

    def wait_available(self, namespace: str, release: str, timeout: float = 120) -> list[str]:
        return wait_for(
            lambda: self.deployments_available(namespace, release),
            timeout=timeout,
            interval=0.5,
            message=f"the Deployments of {release} to be Available",
        )

    def labelled(self, release: str, namespaces: list[str]) -> list[str]:
        """Every object still carrying the release's instance label (or Helm's release record)."""
        from kubernetes import client

        selector = f"app.kubernetes.io/instance={release}"
        core, apps = self.core(), self.apps()
        rbac = client.RbacAuthorizationV1Api(self.api_client)
        net = client.NetworkingV1Api(self.api_client)
        found: list[str] = []
        for ns in namespaces:
            for kind, lister in (
                ("Deployment", apps.list_namespaced_deployment),
                ("ReplicaSet", apps.list_namespaced_replica_set),
                ("Pod", core.list_namespaced_pod),
                ("Service", core.list_namespaced_service),
                ("ConfigMap", core.list_namespaced_config_map),
                ("Secret", core.list_namespaced_secret),
                ("ServiceAccount", core.list_namespaced_service_account),
                ("Role", rbac.list_namespaced_role),
                ("RoleBinding", rbac.list_namespaced_role_binding),
                ("NetworkPolicy", net.list_namespaced_network_policy),
            ):
                found += [f"{kind} {ns}/{o.metadata.name}" for o in lister(ns, label_selector=selector).items]
            records = core.list_namespaced_secret(ns, label_selector=f"owner=helm,name={release}").items
            found += [f"Helm release record {ns}/{o.metadata.name}" for o in records]
        for kind, lister in (
            ("ClusterRole", rbac.list_cluster_role),
            ("ClusterRoleBinding", rbac.list_cluster_role_binding),
        ):
            found += [f"{kind} {o.metadata.name}" for o in lister(label_selector=selector).items]
        return found


def manifests(rendered: str) -> list[dict[str, Any]]:
    import yaml

    return [doc for doc in yaml.safe_load_all(rendered) if doc]
