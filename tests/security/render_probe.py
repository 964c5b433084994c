"""A stand-in worker process for the renderer-confinement tests (run as a script, not collected).

It is started with a secret in its environment, like a worker whose Secret came in through
``envFrom``, so ``/proc/<its pid>/environ`` holds that secret for its whole life. It then renders
through the real code and prints one JSON line: the output or the error, and the peak resident
memory of the renderer (``RUSAGE_CHILDREN``) and of itself, in bytes.

``python render_probe.py render|run ROOT TARGET``: ``render`` renders ``TARGET`` (a chart or
kustomization directory inside ``ROOT``) as a job does (:func:`mergeway.render.render`); ``run``
runs ``helm template`` or ``kubectl kustomize`` (by the kind of ``TARGET``) straight through
:func:`mergeway.proc.run` in a sandbox, without the render layer's static checks, to show that
the process confinement holds on its own (kustomize's load restrictor off, too). With
``PROBE_LINK_PROC=DIR`` it first links ``DIR/worker`` to its own ``/proc/<pid>/environ``.
"""

from __future__ import annotations

import json
import os
import resource
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from mergeway import binaries, proc
from mergeway.render import RenderError, render


def main(mode: str, root: Path, target: Path) -> dict[str, object]:
    result: dict[str, object] = {"pid": os.getpid()}
    link = os.environ.get("PROBE_LINK_PROC")
    if link:  # this process's own environment, linked into the chart
        Path(link).mkdir(parents=True, exist_ok=True)
        Path(link, "worker").symlink_to(f"/proc/{os.getpid()}/environ")
    try:
        if mode == "render":
            rendered = render(root, str(target.relative_to(root)))
            result["stdout"] = json.dumps([m.obj for m in rendered.manifests])
        else:
            if (target / "Chart.yaml").is_file():
                argv = [binaries.find("helm"), "template", "r", str(target)]
            else:
                # Without kustomize's own check, as if it were missed: the confinement must hold alone.
                argv = [binaries.find("kubectl"), "kustomize", "--load-restrictor=LoadRestrictionsNone", str(target)]
            with proc.sandbox(readable=[root]) as box:
                env = {**box.env, "HELM_CACHE_HOME": str(box.home), "HELM_CONFIG_HOME": str(box.home)}
                done = proc.run(argv, timeout=60, env=env, cwd=str(box.home), confine=box.confinement)
            result["stdout"] = done.stdout
    except (proc.ToolError, RenderError) as exc:
        result["error"] = str(exc)
    result["renderer_peak_bytes"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    # VmHWM, not RUSAGE_SELF's ru_maxrss: Linux carries into ru_maxrss the high-water mark of the image
    # this process exec'd from, so a probe started by a long test session reported the session's size.
    result["worker_peak_bytes"] = _own_peak_bytes()
    return result


def _own_peak_bytes() -> int:
    """This process's own peak resident memory (``VmHWM``), in bytes."""
    with open("/proc/self/status", encoding="ascii") as status:
        line = next(line for line in status if line.startswith("VmHWM:"))
    return int(line.split()[1]) * 1024


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]))))
