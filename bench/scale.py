"""bench/scale: does a 5,000-object environment cost per object what a 500-object one does, in bounded memory?

For each size, a fresh namespace gets the set created with ``mergeway apply --no-wait``, then every
object is changed and ``mergeway preview`` (every object dry-run) and ``mergeway apply`` (every
object dry-run, then applied) run on it. The objects are small ones of cheap kinds (ConfigMaps,
ServiceAccounts, Secrets; see ``write_small_set``) so that the simulated nodes' pod capacity does
not decide the result. Prints wall seconds, seconds per object, peak RSS of the ``mergeway``
process, and the per-object cost at the largest size relative to the smallest.

Targets: peak RSS under 250 MB at 5,000 objects, and per-object cost at most 1.2x the cost at 500.

Run: .venv/bin/python bench/scale.py [--sizes 500,5000]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
from pathlib import Path

from _common import BIN, cluster_env, kubectl, launcher, write_small_set


def run(argv: list[str], env: dict[str, str], ok: tuple[int, ...] = (0,)) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one command."""
    began = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - began
    code = os.waitstatus_to_exitcode(status)
    stderr = proc.stderr.read().decode() if proc.stderr else ""
    if code not in ok:
        raise RuntimeError(f"{argv[1]} exited {code}: {stderr[-800:]}")
    return wall, usage.ru_maxrss / 1024


def changed(folder: Path) -> None:
    """Change every object: a new value in each data/stringData, a label on each ServiceAccount."""
    for file in folder.glob("*.yaml"):
        text = file.read_text()
        text = text.replace("value-", "changed-").replace("token: t-", "token: c-")
        text = text.replace(
            "kind: ServiceAccount\nmetadata: {name:", "kind: ServiceAccount\nmetadata: {labels: {v: '2'}, name:"
        )
        file.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="500,5000")
    args = parser.parse_args()
    env, started = cluster_env()
    rows: list[tuple[int, str, float, float]] = []
    try:
        for size in [int(s) for s in args.sizes.split(",")]:
            ns = f"bench-scale-{size}"
            kubectl(env, "delete", "namespace", ns, "--ignore-not-found", "--wait=true")
            kubectl(env, "create", "namespace", ns)
            with tempfile.TemporaryDirectory() as tmp:
                folder = Path(tmp) / "set"
                write_small_set(folder, size)
                base = [str(BIN / "mergeway")]
                target = [str(folder), "-n", ns]
                rows.append((size, "create", *run([*base, "apply", *target, "--no-wait"], env)))
                changed(folder)
                rows.append((size, "preview", *run([*base, "preview", *target, "--color", "never"], env, ok=(1,))))
                rows.append((size, "apply", *run([*base, "apply", *target, "--no-wait"], env)))
            kubectl(env, "delete", "namespace", ns, "--wait=true")
            for r in rows[-3:]:
                print(
                    f"{r[0]:>5} objects {r[1]:<8} {r[2]:7.2f}s  {1000 * r[2] / r[0]:6.2f} ms/object  rss {r[3]:6.1f} MB"
                )
    finally:
        if started:
            launcher().down()
    sizes = sorted({r[0] for r in rows})
    print("\nsize   phase     seconds  ms/object  peak_rss_MB")
    for size, phase, wall, rss in rows:
        print(f"{size:>5}  {phase:<8} {wall:8.2f}  {1000 * wall / size:9.2f}  {rss:11.1f}")
    if len(sizes) >= 2:
        small, large = sizes[0], sizes[-1]
        per = {(s, p): w / s for s, p, w, _ in rows}
        for phase in ("create", "preview", "apply"):
            ratio = per[(large, phase)] / per[(small, phase)]
            print(f"per-object cost {phase:<8} at {large} vs {small}: {ratio:.2f}x (target <= 1.2)")
        print(f"peak RSS at {large}: {max(r for s, _, _, r in rows if s == large):.1f} MB (target < 250)")


if __name__ == "__main__":
    main()
