"""bench/diff: `mergeway preview` vs `kubectl diff --server-side` on 50, 200 and 500 objects.

Each set is deployed once with `mergeway apply` (as Mergeway would have deployed it), then changed
in two ways, and both tools diff the same files against the same live objects:

  typical PR:  every 10th app gets a new image, replica count and config (~10% of objects change);
  everything:  every app changes (the worst case: every object needs a server-side dry run).

Both run as CLIs (process start-up included), the median of several runs, in the same process and
against the same local cluster. Prints seconds and the ratio kubectl/mergeway (higher is better).

Run: .venv/bin/python bench/diff.py [--sizes 50,200,500] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from _common import BIN, ROOT, cluster_env, kubectl, launcher, timed, timed_pair, write_set


def server_floor(env: dict[str, str], folder: Path, ns: str, repeat: int) -> float:
    """Seconds the API server needs for one dry run of every object, from a warm client.

    The same bodies Mergeway sends (labelled, hashed, namespaced), all at once at 16 in flight over
    open connections, with no start-up, discovery or diffing: what no client can beat.
    """
    sys.path.insert(0, str(ROOT))
    from mergeway.kube.applyset import ApplySet
    from mergeway.kube.client import KubeClient
    from mergeway.kube.diff import Differ
    from mergeway.render import render

    client = KubeClient.from_kubeconfig(env["KUBECONFIG"], pool_size=16)
    differ = Differ(client)
    labels = ApplySet("floor", ns).labels()
    prepared = [differ.prepare(m, ns, labels) for m in render(folder, ".", namespace=ns).manifests]
    with ThreadPoolExecutor(16) as pool:

        def dry_runs() -> None:
            list(pool.map(lambda rp: differ.dry_run(rp[0], rp[1]), prepared))

        dry_runs()  # open the connections
        return timed(dry_runs, repeat)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="50,200,500")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    env, started = cluster_env()
    rows = []
    try:
        for size in [int(s) for s in args.sizes.split(",")]:
            ns = f"bench-diff-{size}"
            kubectl(env, "delete", "namespace", ns, "--ignore-not-found", "--wait=true")
            kubectl(env, "create", "namespace", ns)
            with tempfile.TemporaryDirectory() as tmp:
                folder = Path(tmp) / "set"
                write_set(folder, size, generation=1)
                deployed = subprocess.run(
                    [str(BIN / "mergeway"), "apply", str(folder), "-n", ns, "--no-wait"],
                    env=env,
                    capture_output=True,
                    timeout=900,
                )
                if deployed.returncode != 0:
                    raise RuntimeError(deployed.stderr.decode()[-800:])
                for scenario, every in (("typical PR", 10), ("everything", 1)):
                    write_set(folder, size, generation=2, changed_every=every)

                    def run_mergeway(folder: Path = folder, ns: str = ns) -> None:
                        proc = subprocess.run(
                            [str(BIN / "mergeway"), "preview", str(folder), "-n", ns, "--color", "never"],
                            env=env,
                            capture_output=True,
                            timeout=600,
                        )
                        if proc.returncode != 1:
                            raise RuntimeError(
                                f"mergeway preview exited {proc.returncode}: {proc.stderr.decode()[-800:]}"
                            )

                    def run_kubectl(folder: Path = folder, ns: str = ns) -> None:
                        proc = kubectl(
                            env,
                            "diff",
                            "--server-side",
                            "--field-manager=mergeway",
                            "--force-conflicts",
                            "-n",
                            ns,
                            "-f",
                            str(folder),
                            check=False,
                        )
                        if proc.returncode != 1:
                            raise RuntimeError(f"kubectl diff exited {proc.returncode}: {proc.stderr.decode()[-800:]}")

                    run_mergeway()  # warm-up, untimed: caches and the API server's, for both tools alike
                    run_kubectl()
                    mergeway, peer = timed_pair(run_mergeway, run_kubectl, args.repeat)
                    floor = server_floor(env, folder, ns, args.repeat) if scenario == "everything" else 0.0
                    rows.append((size, scenario, mergeway, peer, floor, os.getloadavg()[0]))
                    print(
                        f"{size:>4} objects, {scenario:<10}: mergeway preview {mergeway:6.2f}s  "
                        f"kubectl diff --server-side {peer:6.2f}s  ratio {peer / mergeway:5.2f}x"
                        + (f"  (API server floor for {size} dry runs {floor:.2f}s)" if floor else ""),
                        flush=True,
                    )
            # Wait for the deletion: a namespace being emptied in the background would load the next size.
            kubectl(env, "delete", "namespace", ns, "--wait=true")
    finally:
        if started:
            launcher().down()
    print(f"\nmedians of {args.repeat} alternating runs; floor = a dry run of every object from a warm client")
    print("size  scenario    mergeway_s  kubectl_s  kubectl/mergeway  floor_s  mergeway/floor  load_avg")
    for size, scenario, mergeway, peer, floor, load in rows:
        floor_cols = f"{floor:7.2f}  {mergeway / floor:14.2f}" if floor else f"{'-':>7}  {'-':>14}"
        times = f"{mergeway:10.2f}  {peer:9.2f}  {peer / mergeway:16.2f}"
        print(f"{size:>4}  {scenario:<10}  {times}  {floor_cols}  {load:8.1f}")


if __name__ == "__main__":
    main()
