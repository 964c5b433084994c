"""bench/drift: what a drift check of 500 objects (8 kinds) costs, beside one preview of the same environment.

A drift check runs every interval on every environment, so an environment without drift must cost
about one request per (kind, namespace) and no dry run (mergeway/kube/drift.py says how). This
deploys 500 objects (per app: a Deployment, Service, ConfigMap, Secret, ServiceAccount, Role,
RoleBinding and PodDisruptionBudget) into a fresh namespace, then measures with a warm client
(discovery cached, as in a worker that already ran a job):

* **check, no drift**: requests and seconds;
* **check, 10 drifted**: 5 Deployments scaled and 5 ConfigMaps edited under other field managers;
* **preview, no change**: ``Differ.plan_for`` of the same commit (lists, then "unchanged since
  applied" without dry runs, plus the prune's reads);
* **preview, every app changed**: the same with a new image everywhere, so every Deployment is
  dry-run, the preview a real pull request touching the whole environment costs.

Prints requests by method and seconds (medians of the rounds) and the ratios preview/check.

Run: .venv/bin/python bench/drift.py [--objects 500] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import Counter
from typing import Any

from _common import cluster_env, kubectl, settle

from mergeway.kube.apply import Applier
from mergeway.kube.applyset import ApplySet
from mergeway.kube.client import KubeClient
from mergeway.kube.diff import Differ
from mergeway.kube.discovery import Discovery
from mergeway.kube.drift import Detector, counted
from mergeway.manifest import Manifest

KINDS = 8
MERGE_PATCH = "application/merge-patch+json"


def app_objects(name: str, image: str) -> list[dict[str, Any]]:
    labels = {"app": name}
    return [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "web", "image": image}]}},
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name},
            "spec": {"selector": labels, "ports": [{"port": 80}]},
        },
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"level": "info"}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "stringData": {"token": f"t-{name}"}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": name},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": name}],
        },
        {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": {"name": name},
            "spec": {"minAvailable": 0, "selector": {"matchLabels": labels}},
        },
    ]


def manifests(objects: int, image: str) -> list[Manifest]:
    out: list[Manifest] = []
    app = 0
    while len(out) < objects:
        out.extend(Manifest(obj, "bench.yaml") for obj in app_objects(f"app-{app:03d}", image))
        app += 1
    return out[:objects]


def measure(fn: Any, client: KubeClient, repeat: int) -> tuple[float, Counter[str], Any]:
    """Median seconds of ``fn(spied_client)``, the requests of one run, and its last result."""
    times, sent, result = [], Counter[str](), None
    for _ in range(repeat):
        settle()
        spied, spy = counted(client)
        began = time.perf_counter()
        result = fn(spied)
        times.append(time.perf_counter() - began)
        sent = spy.sent
    return statistics.median(times), sent, result


def line(label: str, seconds: float, sent: Counter[str]) -> str:
    by = ", ".join(f"{k} {v}" for k, v in sorted(sent.items()))
    return f"{label:<32} {sum(sent.values()):>5} requests ({by}) {seconds:>7.2f} s"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    env, _ = cluster_env()
    ns = f"bench-drift-{args.objects}"
    kubectl(env, "delete", "namespace", ns, "--ignore-not-found", "--wait=true")
    kubectl(env, "create", "namespace", ns)
    client = KubeClient.from_kubeconfig(env["KUBECONFIG"], pool_size=16)
    applyset = ApplySet("bench-drift", ns)
    current = manifests(args.objects, "example.com/app:v1")
    result = Applier(client).deploy(current, applyset=applyset, default_namespace=ns, wait=False)
    assert result.ok, result.failed
    discovery = Discovery(client)
    discovery.known("v1", "ConfigMap")  # warm, as in a worker

    def check(c: KubeClient) -> list[Any]:
        return Detector(c, discovery).detect(current, applyset, default_namespace=ns)

    def preview(changed: list[Manifest]) -> Any:
        return lambda c: Differ(c, discovery).plan_for(changed, applyset, default_namespace=ns)

    clean_s, clean_sent, found = measure(check, client, args.repeat)
    assert found == [], found
    same_s, same_sent, _ = measure(preview(current), client, args.repeat)
    every_s, every_sent, _ = measure(preview(manifests(args.objects, "example.com/app:v2")), client, args.repeat)
    for i in range(5):
        client.request(
            "PATCH",
            f"/apis/apps/v1/namespaces/{ns}/deployments/app-{i:03d}/scale",
            body={"spec": {"replicas": 3}},
            query={"fieldManager": "bench-scale"},
            content_type=MERGE_PATCH,
        )
        client.request(
            "PATCH",
            f"/api/v1/namespaces/{ns}/configmaps/app-{i + 5:03d}",
            body={"data": {"level": "debug"}},
            query={"fieldManager": "bench-edit"},
            content_type=MERGE_PATCH,
        )
    drift_s, drift_sent, found = measure(check, client, args.repeat)
    assert len(found) == 10, [d.ref for d in found]
    kubectl(env, "delete", "namespace", ns, "--wait=false")

    print(f"drift check vs preview: {args.objects} objects, {KINDS} kinds, 1 namespace (medians of {args.repeat})")
    print(line("check, no drift", clean_s, clean_sent))
    print(line("check, 10 drifted", drift_s, drift_sent))
    print(line("preview, no change", same_s, same_sent))
    print(line("preview, every app changed", every_s, every_sent))
    total = sum(clean_sent.values())
    print(
        f"preview/check (no drift): requests x{sum(same_sent.values()) / total:.1f} (no change), "
        f"x{sum(every_sent.values()) / total:.1f} (every app changed); "
        f"seconds x{same_s / clean_s:.1f}, x{every_s / clean_s:.1f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
