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

Run: .venv/bin/python bench/apply.py [--sizes 50,200,500]
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from pathlib import Path

from _common import BIN, cluster_env, kubectl, launcher, write_set, write_small_set

#: (phase, generation, change every Nth app); "small" is the many-small-objects create.
PHASES = (("create", 1, 1), ("typical", 2, 10), ("update-all", 3, 1), ("small", 1, 1))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="50,200,500")
    args = parser.parse_args()
    env, started = cluster_env()
    rows = []
    try:
        for size in [int(s) for s in args.sizes.split(",")]:
            result: dict[tuple[str, str], float] = {}
            namespaces = {tool: f"bench-apply-{tool}-{size}" for tool in ("mergeway", "kubectl")}
            for ns in namespaces.values():
                kubectl(env, "delete", "namespace", ns, "--ignore-not-found", "--wait=true")
                kubectl(env, "delete", "namespace", f"{ns}-small", "--ignore-not-found", "--wait=true")
                kubectl(env, "create", "namespace", ns)
            with tempfile.TemporaryDirectory() as tmp:
                folder = Path(tmp) / "set"
                for phase, generation, every in PHASES:
                    if phase == "small":
                        write_small_set(folder, size)
                    else:
                        write_set(folder, size, generation=generation, changed_every=every)
                    for tool, main_ns in namespaces.items():
                        ns = f"{main_ns}-small" if phase == "small" else main_ns
                        if phase == "small":
                            kubectl(env, "create", "namespace", ns)
                        if tool == "mergeway":
                            argv = [
                                str(BIN / "mergeway"),
                                "apply",
                                str(folder),
                                "-n",
                                ns,
                                "--no-wait",
                                "--applyset",
                                f"bench-{size}",
                            ]
                        else:
                            argv = [
                                str(BIN / "kubectl"),
                                "apply",
                                "--server-side",
                                "--field-manager=kubectl-bench",
                                "-n",
                                ns,
                                "-f",
                                str(folder),
                            ]
                        began = time.perf_counter()
                        proc = subprocess.run(argv, env=env, capture_output=True, timeout=900)
                        result[(tool, phase)] = time.perf_counter() - began
                        if proc.returncode != 0:
                            raise RuntimeError(f"{tool} {phase} failed: {proc.stderr.decode()[-1000:]}")
                        # Untimed: let the rollout this apply started finish, so the next measurement
                        # (of either tool) runs on a quiet control plane.
                        kubectl(
                            env, "wait", "--for=condition=Available", "deployment", "--all", "-n", ns, "--timeout=600s"
                        )
            for ns in namespaces.values():
                kubectl(env, "delete", "namespace", ns, "--wait=true")
                kubectl(env, "delete", "namespace", f"{ns}-small", "--wait=true")
            rows.append((size, result))
            parts = []
            for phase, _, _ in PHASES:
                m, k = result[("mergeway", phase)], result[("kubectl", phase)]
                parts.append(f"{phase}: mergeway {m:.2f}s kubectl {k:.2f}s ({k / m:.2f}x)")
            print(f"{size:>4} objects: " + "; ".join(parts), flush=True)
    finally:
        if started:
            launcher().down()
    print("\nsize  phase       mergeway_s  kubectl_s  kubectl/mergeway")
    for size, result in rows:
        for phase, _, _ in PHASES:
            m, k = result[("mergeway", phase)], result[("kubectl", phase)]
            print(f"{size:>4}  {phase:<10} {m:10.2f}  {k:9.2f}  {k / m:16.2f}")


if __name__ == "__main__":
    main()
