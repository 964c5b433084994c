"""bench/crds: a CRD-heavy install, `mergeway apply --no-wait` vs `kubectl apply --server-side`.

The manifest is Argo CD's own install bundle (bench/data/argocd-v3.5.1-install.yaml, see
bench/data/README.md): 59 objects, of which 3 CustomResourceDefinitions make 1.8 of its 1.9 MB, and
no custom resources. That is what platform teams install through GitOps (operators, cert managers,
monitoring stacks, Argo CD itself), and where the API server's cost per request is decided by the
size of the CRD schemas it decodes, validates and stores, not by the number of objects.

Each tool, in every round: everything of the bundle deleted (untimed; its CRDs, ClusterRoles and
ClusterRoleBindings are cluster-scoped, so the two tools cannot each keep their own copy), then
**create** (the bundle into a fresh namespace) and **unchanged** (the same bundle applied again
at once, what every later sync of an install that did not change does). Neither waits for
rollouts. The tools take turns going first; the ratio printed is kubectl / mergeway of the
medians (above 1: Mergeway faster). For the profile, each timed run also reports the client's CPU
(the child process's rusage) and the API server's and etcd's CPU over it.

Run: .venv/bin/python bench/crds.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from _common import BIN, ROOT, cluster_env, kubectl, launcher, serving_cpu, settle

BUNDLE = ROOT / "bench" / "data" / "argocd-v3.5.1-install.yaml"
PHASES = ("create", "unchanged")
TOOLS = ("mergeway", "kubectl")


class Run:
    """One timed CLI run: wall seconds, the client's CPU seconds, the API server's and etcd's CPU seconds."""

    def __init__(self, wall: float, client: float, server: float) -> None:
        self.wall, self.client, self.server = wall, client, server


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_tool(env: dict[str, str], tool: str, folder: Path, ns: str) -> Run:
    """One timed apply of ``folder`` into ``ns``, without waiting for rollouts."""
    settle()
    if tool == "mergeway":
        argv = [str(BIN / "mergeway"), "apply", str(folder), "-n", ns, "--no-wait", "--applyset", "bench-crds"]
    else:
        argv = [str(BIN / "kubectl"), "apply", "--server-side", "--field-manager=kubectl-bench", "-n", ns]
        argv += ["-f", str(folder)]
    cpu, server = children_cpu(), serving_cpu()
    began = time.perf_counter()
    proc = subprocess.run(argv, env=env, capture_output=True, timeout=900)
    wall = time.perf_counter() - began
    run = Run(wall, children_cpu() - cpu, serving_cpu() - server)
    if proc.returncode != 0:
        raise RuntimeError(f"{tool} failed: {proc.stderr.decode()[-1000:]}")
    return run


def clean(env: dict[str, str], folder: Path, namespaces: list[str]) -> None:
    """Delete every object of the bundle (cluster-scoped ones included) and the tools' namespaces."""
    for ns in namespaces:
        kubectl(env, "delete", "-n", ns, "-f", str(folder), "--ignore-not-found", "--wait=true")
        kubectl(env, "delete", "namespace", ns, "--ignore-not-found", "--wait=true")


def one_round(env: dict[str, str], folder: Path, tools: tuple[str, ...]) -> dict[tuple[str, str], Run]:
    result: dict[tuple[str, str], Run] = {}
    namespaces = {tool: f"bench-crds-{tool}" for tool in TOOLS}
    for tool in tools:
        clean(env, folder, list(namespaces.values()))
        kubectl(env, "create", "namespace", namespaces[tool])
        for phase in PHASES:
            result[(tool, phase)] = run_tool(env, tool, folder, namespaces[tool])
    clean(env, folder, list(namespaces.values()))
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5, help="rounds (tools alternate going first)")
    args = parser.parse_args()
    env, started = cluster_env()
    runs: dict[tuple[str, str], list[Run]] = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / "bundle"
            folder.mkdir()
            shutil.copy(BUNDLE, folder / BUNDLE.name)
            for index in range(args.repeat):
                tools = TOOLS if index % 2 == 0 else TOOLS[::-1]
                for key, run in one_round(env, folder, tools).items():
                    runs.setdefault(key, []).append(run)
                    print(f"round {index + 1}: {key[0]:<8} {key[1]:<9} {run.wall:.2f}s", flush=True)
    finally:
        if started:
            launcher().down()
    size = BUNDLE.stat().st_size / 1e6
    print(f"\n{BUNDLE.name} ({size:.1f} MB); medians of {args.repeat} round(s); load average {os.getloadavg()[0]:.1f}")
    print("phase      tool      wall_s  client_cpu_s  server_cpu_s  runs")
    for phase in PHASES:
        for tool in TOOLS:
            values = runs[(tool, phase)]
            wall = statistics.median(r.wall for r in values)
            client = statistics.median(r.client for r in values)
            server = statistics.median(r.server for r in values)
            listed = ", ".join(f"{r.wall:.2f}" for r in values)
            print(f"{phase:<10} {tool:<8} {wall:7.2f}  {client:12.2f}  {server:12.2f}  {listed}")
    print("\nratio = kubectl / mergeway of the median wall times (above 1: Mergeway faster)")
    for phase in PHASES:
        m = statistics.median(r.wall for r in runs[("mergeway", phase)])
        k = statistics.median(r.wall for r in runs[("kubectl", phase)])
        print(f"{phase:<10} mergeway {m:.2f}s kubectl {k:.2f}s ({k / m:.2f}x)")


if __name__ == "__main__":
    main()
