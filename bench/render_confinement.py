"""What confining renderers costs and bounds: a normal render's time, a hostile render's peak memory.

Three measurements, each through :func:`mergeway.proc.run` with the real ``helm``:

- an ordinary chart rendered unconfined, with limits only, and with limits and Landlock (the
  default): the median wall time of ``--rounds`` renders each, so the jail's own start-up shows;
- the 120-byte template that doubles a string, under ``MERGEWAY_RENDER_MEMORY_BYTES`` (default
  256 MiB): how long until it is stopped, and the renderer's peak resident memory (``wait4``);
- a template looping a billion times under a 2 s CPU limit: how long until it is stopped.

Run: ``.venv/bin/python bench/render_confinement.py [--rounds 15]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mergeway import binaries, proc

MiB = 1024 * 1024
CHART = "apiVersion: v2\nname: c\nversion: 0.1.0\n"
ORDINARY = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app}\ndata: {k: v}\n"
DOUBLING = '{{- $s := "aaaaaaaaaaaaaaaa" }}{{- range until 40 }}{{- $s = print $s $s }}{{- end }}\na: {{ len $s }}\n'
LOOPING = "{{- range until 1000 }}{{- range until 1000 }}{{- range until 1000 }}{{- end }}{{- end }}{{- end }}\n"


def chart(base: Path, name: str, template: str) -> Path:
    (base / name / "templates").mkdir(parents=True)
    (base / name / "Chart.yaml").write_text(CHART)
    (base / name / "templates" / "x.yaml").write_text(template)
    return base / name


def render(root: Path, confinement: proc.Confinement | None) -> tuple[float, proc.Completed | str]:
    """Wall time and the completed run (or the error message) of one ``helm template``."""
    with proc.sandbox(readable=[root], confinement=confinement) as box:
        env = {**box.env, "HELM_CACHE_HOME": str(box.home), "HELM_CONFIG_HOME": str(box.home)}
        confine = box.confinement if confinement is not None else None
        started = time.perf_counter()
        try:
            done: proc.Completed | str = proc.run(
                [binaries.find("helm"), "template", "r", str(root)], timeout=300, env=env, confine=confine
            )
        except proc.ToolError as exc:
            done = exc.message
        return time.perf_counter() - started, done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    rounds = parser.parse_args().rounds
    memory = 256 * MiB
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        ordinary = chart(base, "ordinary", ORDINARY)
        for label, confinement in (
            ("unconfined", None),
            ("limits only", proc.Confinement(memory, 60, isolate=False)),
            ("limits + Landlock", proc.Confinement(memory, 60, isolate=True)),
        ):
            times = [render(ordinary, confinement)[0] for _ in range(rounds)]
            print(f"ordinary chart, {label}: median {statistics.median(times) * 1000:.0f} ms over {rounds}")

        # The error is all proc.run returns for a stopped run: measure the peak with execute().
        doubling = chart(base, "doubling", DOUBLING)
        limits = proc.Confinement(memory, 60, isolate=True)
        with proc.sandbox(readable=[doubling], confinement=limits) as box:
            argv = box.confinement.wrap([binaries.find("helm"), "template", "r", str(doubling)])
            done = proc.execute(argv, timeout=300, env=box.env)
        reason = box.confinement.explain(done)
        print(
            f"doubling template, {memory // MiB} MiB limit: stopped after {done.seconds:.1f} s, "
            f"peak resident {done.max_rss_bytes / MiB:.0f} MiB: {reason}"
        )

        looping = chart(base, "looping", LOOPING)
        seconds, result = render(looping, proc.Confinement(memory, 2, isolate=True))
        print(f"looping template, 2 s CPU limit: stopped after {seconds:.1f} s: {result}")


if __name__ == "__main__":
    main()
