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
import tempfile
import time
from pathlib import Path

from _common import BIN, cluster_env, kubectl, launcher, settle, write_set, write_small_set

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


if __name__ == "__main__":
    main()
