"""bench/apply: `mergeway apply` vs `kubectl apply --server-side` on 50, 200 and 500 objects.

For each size, both tools create the set in a fresh namespace of their own, then apply two changed
versions of it: a typical merge (every 10th app gets a new image, replica count and config, ~10% of
objects) and a change to every app. A fourth scenario, **small**, creates many small objects of
cheap kinds (ConfigMaps, ServiceAccounts, Secrets) in a fresh namespace, where only per-request and
start-up costs count. Neither waits for rollouts (``--no-wait`` for Mergeway; kubectl
never waits), so this measures applying. Mergeway dry-runs every changed object before applying
anything (an invalid object stops the deploy before it starts) and skips unchanged objects; kubectl
applies every object once. Prints seconds and the ratio kubectl/mergeway for each phase.

The merge-to-applied latency (webhook received → all objects applied) through the whole chain is
measured by bench/merge_latency.py.

Run: .venv/bin/python bench/apply.py [--sizes 50,200,500] [--repeat 3]   (medians of the rounds)
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from _common import BIN, ROOT, cluster_env, kubectl, launcher, serving_cpu, settle, write_set, write_small_set

#: (phase, generation, change every Nth app); "small" is the many-small-objects create.
PHASES = (("create", 1, 1), ("typical", 2, 10), ("update-all", 3, 1), ("small", 1, 1))


def run_tool(env: dict[str, str], tool: str, folder: Path, ns: str, size: int) -> float:
    """One timed apply of ``folder`` into ``ns``; then, untimed, wait for the rollout it started."""
    settle()
    if tool == "mergeway":
        argv = [str(BIN / "mergeway"), "apply", str(folder), "-n", ns, "--no-wait", "--applyset", f"bench-{size}"]
    else:
        argv = [str(BIN / "kubectl"), "apply", "--server-side", "--field-manager=kubectl-bench", "-n", ns]
        argv += ["-f", str(folder)]
    began = time.perf_counter()
    proc = subprocess.run(argv, env=env, capture_output=True, timeout=900)
    elapsed = time.perf_counter() - began
    if proc.returncode != 0:
        raise RuntimeError(f"{tool} failed: {proc.stderr.decode()[-1000:]}")
    # Untimed: let the rollout this apply started finish, so the next measurement (of either
    # tool) runs on a quiet control plane.
    kubectl(env, "wait", "--for=condition=Available", "deployment", "--all", "-n", ns, "--timeout=600s")
    return elapsed


def guarantee_floor(env: dict[str, str], folder: Path, size: int) -> tuple[float, float]:
    """What "validate everything, then apply anything" costs the API server for ``folder``, fresh.

    A warm client in this process sends every object's dry run, then every object's apply (16 in
    flight on open connections; no start-up, discovery or planning) into a fresh namespace. Returns
    its wall seconds, and the API server's and etcd's CPU seconds for those requests divided by the
    cores: no client that keeps the guarantee can finish sooner than that on this machine.
    """
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from mergeway.kube.applyset import ApplySet
    from mergeway.kube.client import KubeClient
    from mergeway.kube.diff import Differ
    from mergeway.kube.patch import server_side_apply
    from mergeway.render import render

    ns = f"bench-apply-floor-{size}"
    kubectl(env, "delete", "namespace", ns, "--ignore-not-found", "--wait=true")
    kubectl(env, "create", "namespace", ns)
    client = KubeClient.from_kubeconfig(env["KUBECONFIG"], pool_size=16)
    differ = Differ(client)
    labels = ApplySet("floor", ns).labels()
    prepared = [differ.prepare(m, ns, labels) for m in render(folder, ".", namespace=ns).manifests]

    def apply(resource_obj: tuple[Any, dict[str, Any]]) -> None:
        resource, obj = resource_obj
        path = resource.object_path(obj["metadata"]["name"], ns)
        server_side_apply(client, path, obj, field_manager="mergeway")

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda _: client.request("GET", f"/api/v1/namespaces/{ns}"), range(32)))  # connections
        settle()
        cpu, began = serving_cpu(), time.perf_counter()
        list(pool.map(lambda rp: differ.dry_run(rp[0], rp[1]), prepared))
        list(pool.map(apply, prepared))
        wall, cpu = time.perf_counter() - began, serving_cpu() - cpu
    kubectl(env, "delete", "namespace", ns, "--wait=true")
    return wall, cpu / (os.cpu_count() or 1)


def one_round(env: dict[str, str], size: int, tools: tuple[str, ...]) -> dict[tuple[str, str], float]:
    """Every phase once for both tools, from fresh namespaces."""
    result: dict[tuple[str, str], float] = {}
    namespaces = {tool: f"bench-apply-{tool}-{size}" for tool in tools}
    for ns in namespaces.values():
        for name in (ns, f"{ns}-small"):
            kubectl(env, "delete", "namespace", name, "--ignore-not-found", "--wait=true")
        kubectl(env, "create", "namespace", ns)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "set"
        for phase, generation, every in PHASES:
            if phase == "small":
                write_small_set(folder, size)
            else:
                write_set(folder, size, generation=generation, changed_every=every)
            for tool in tools:
                ns = f"{namespaces[tool]}-small" if phase == "small" else namespaces[tool]
                if phase == "small":
                    kubectl(env, "create", "namespace", ns)
                result[(tool, phase)] = run_tool(env, tool, folder, ns, size)
            if phase == "small":
                result[("floor", phase)], result[("bound", phase)] = guarantee_floor(env, folder, size)
    for ns in namespaces.values():
        for name in (ns, f"{ns}-small"):
            kubectl(env, "delete", "namespace", name, "--wait=true")
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="50,200,500")
    parser.add_argument("--repeat", type=int, default=4, help="rounds per size (tools alternate going first)")
    args = parser.parse_args()
    env, started = cluster_env()
    rows = []
    try:
        for size in [int(s) for s in args.sizes.split(",")]:
            runs: dict[tuple[str, str], list[float]] = {}
            for index in range(args.repeat):
                # The tools take turns going first, so neither always meets the other's aftermath.
                tools = ("mergeway", "kubectl") if index % 2 == 0 else ("kubectl", "mergeway")
                for key, seconds in one_round(env, size, tools).items():
                    runs.setdefault(key, []).append(seconds)
            result = {key: statistics.median(values) for key, values in runs.items()}
            rows.append((size, result, os.getloadavg()[0]))
            parts = []
            for phase, _, _ in PHASES:
                m, k = result[("mergeway", phase)], result[("kubectl", phase)]
                parts.append(f"{phase}: mergeway {m:.2f}s kubectl {k:.2f}s ({k / m:.2f}x)")
            print(f"{size:>4} objects: " + "; ".join(parts), flush=True)
            for (tool, phase), values in sorted(runs.items()):
                print(f"      {tool:<8} {phase:<10} runs {', '.join(f'{v:.2f}' for v in values)}", flush=True)
    finally:
        if started:
            launcher().down()
    print(f"\nmedians of {args.repeat} round(s); ratio = kubectl / mergeway (above 1: Mergeway faster)")
    print("size  phase       mergeway_s  kubectl_s  kubectl/mergeway  load_avg")
    for size, result, load in rows:
        for phase, _, _ in PHASES:
            m, k = result[("mergeway", phase)], result[("kubectl", phase)]
            print(f"{size:>4}  {phase:<10} {m:10.2f}  {k:9.2f}  {k / m:16.2f}  {load:8.1f}")
    print(
        "\nsmall: the guarantee's floor. Every object dry-run, then every object applied, from a warm client"
        "\n(floor_s); the API server's and etcd's CPU for those requests over the cores (server_s): no client"
        "\nthat validates everything before applying anything finishes sooner, so kubectl_s/server_s is the"
        "\nhighest ratio any such client can reach here."
    )
    print("size  floor_s  server_s  kubectl/floor  kubectl/server  mergeway/floor")
    for size, result, _ in rows:
        m, k = result[("mergeway", "small")], result[("kubectl", "small")]
        floor, bound = result[("floor", "small")], result[("bound", "small")]
        print(f"{size:>4}  {floor:7.2f}  {bound:8.2f}  {k / floor:13.2f}  {k / bound:14.2f}  {m / floor:14.2f}")


if __name__ == "__main__":
    main()
