"""bench/diff: `mergeway preview` vs `kubectl diff --server-side` on 50, 200 and 500 objects.

Each set is applied once, then regenerated with a new image/replica count/config for every app, so
both tools diff the same changed set against the same live objects. Both run as CLIs (process
start-up included), each the median of several runs, in the same process and against the same
local cluster. Prints seconds and the ratio kubectl/mergeway (higher is better for Mergeway).

Run: .venv/bin/python bench/diff.py [--sizes 50,200,500] [--repeat 3]
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
from pathlib import Path

from _common import BIN, cluster_env, kubectl, launcher, timed, write_set


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
                kubectl(env, "apply", "--server-side", "--field-manager=mergeway", "-n", ns, "-f", str(folder))
                write_set(folder, size, generation=2)

                def run_mergeway(folder: Path = folder, ns: str = ns) -> None:
                    proc = subprocess.run(
                        [str(BIN / "mergeway"), "preview", str(folder), "-n", ns, "--color", "never"],
                        env=env,
                        capture_output=True,
                        timeout=600,
                    )
                    if proc.returncode != 1:
                        raise RuntimeError(f"mergeway preview exited {proc.returncode}: {proc.stderr.decode()[-800:]}")

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

                mergeway = timed(run_mergeway, args.repeat)
                peer = timed(run_kubectl, args.repeat)
            kubectl(env, "delete", "namespace", ns, "--wait=false")
            rows.append((size, mergeway, peer))
            print(
                f"{size:>4} objects: mergeway preview {mergeway:6.2f}s  kubectl diff --server-side {peer:6.2f}s  "
                f"ratio {peer / mergeway:5.2f}x",
                flush=True,
            )
    finally:
        if started:
            launcher().down()
    print("\nsize  mergeway_s  kubectl_s  kubectl/mergeway")
    for size, mergeway, peer in rows:
        print(f"{size:>4}  {mergeway:10.2f}  {peer:9.2f}  {peer / mergeway:16.2f}")


if __name__ == "__main__":
    main()
