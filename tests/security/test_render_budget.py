"""One input budget per environment render (issue 24, finding 2, the YAML side).

The alias bound was per file and counted about two bytes per scalar, where the JSON the engine
writes costs four to six: sixteen files of 7.5 KB, each under the per-file bound, rendered to
1.8 GB. Now every file an environment's render reads (manifests, kustomizations, Chart.yaml) and
every renderer's output draw on one budget of aliases, JSON bytes and documents, and each refusal
says which file ran it out and which setting raises it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mergeway.limits import InputLimits
from mergeway.render import RenderError, render


def bomb(name: str, width: int, levels: int, scalar: str = "a") -> str:
    """A ConfigMap holding ``width ** levels`` copies of ``scalar``, spelled with ``(levels - 1) * width`` aliases."""
    lines = ["apiVersion: v1", "kind: ConfigMap", "metadata:", f"  name: {name}", "x:"]
    lines.append("  l0: &l0 [" + ",".join([scalar] * width) + "]")
    for level in range(1, levels):
        lines.append(f"  l{level}: &l{level} [" + ",".join([f"*l{level - 1}"] * width) + "]")
    return "\n".join(lines) + "\n"


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def refusal(root: Path, path: str, limits: InputLimits) -> str:
    with pytest.raises(RenderError) as caught:
        render(root, path, limits=limits)
    return str(caught.value)


MIB = 1024 * 1024


def test_many_files_each_under_the_bound_share_one_budget(tmp_path: Path):
    """Sixteen bombs, each expanding to about a fifth of the bound: together they are refused."""
    limits = InputLimits(max_bytes=4 * MIB, max_aliases=10_000)
    files = {f"deploy/part-{i:02}.yaml": bomb(f"part-{i}", 8, 6) for i in range(16)}
    assert sum(len(text) for text in files.values()) < 8 * 1024
    repo = write(tmp_path, files)
    message = refusal(repo, "deploy", limits)
    assert message.startswith("deploy/part-0")  # the file where the budget ran out, not the first
    assert "deploy/part-00.yaml" not in message
    assert "refused: the YAML expands to more than 4194304 bytes once its aliases (*name) are expanded" in message
    assert "counted as JSON across every file of the environment (MERGEWAY_MAX_RENDERED_BYTES)" in message


def test_sizes_are_counted_as_the_json_they_become(tmp_path: Path):
    """A file the old count let through at half the bound is refused; what is accepted fits as JSON."""
    limits = InputLimits(max_bytes=1 * MIB)
    repo = write(tmp_path, {"big/cm.yaml": bomb("big", 8, 6), "small/cm.yaml": bomb("small", 8, 5)})
    message = refusal(repo, "big", limits)
    assert message.startswith("big/cm.yaml: refused: the YAML expands to more than 1048576 bytes")
    [accepted] = render(repo, "small", limits=limits).manifests
    assert len(json.dumps(accepted.obj)) <= limits.max_bytes


def test_alias_uses_are_counted_across_files(tmp_path: Path):
    aliases = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  labels: &l {{x: y}}\ndata:\n" + "".join(
        f"  k{i}: *l\n" for i in range(30)
    )
    repo = write(tmp_path, {f"deploy/cm-{i}.yaml": aliases.format(name=f"cm-{i}") for i in range(4)})
    message = refusal(repo, "deploy", InputLimits())
    assert message == (
        "deploy/cm-3.yaml: refused: more than 100 YAML aliases (*name) in the environment's files together "
        "(MERGEWAY_MAX_YAML_ALIASES)"
    )
    assert len(render(repo, "deploy/cm-3.yaml").manifests) == 1  # one file alone is within the bound


def test_kustomizations_share_the_budget(tmp_path: Path):
    """The checker reads every kustomization of the environment with the one budget."""
    annotations = "".join(f"    a{i}: *v\n" for i in range(60))
    kustomization = "resources: [{ref}]\nmetadata:\n  name: k\n  annotations:\n    a: &v note\n" + annotations
    repo = write(
        tmp_path,
        {
            "base/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\n",
            "base/kustomization.yaml": kustomization.format(ref="cm.yaml"),
            "deploy/kustomization.yaml": kustomization.format(ref="../base"),
        },
    )
    message = refusal(repo, "deploy", InputLimits())
    assert message.startswith("base/kustomization.yaml: refused: more than 100 YAML aliases (*name)")
    assert render(repo, "base").manifests  # one alone is within the bound


PROBE = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from mergeway import jsonfast
    from mergeway.limits import InputLimits
    from mergeway.render import RenderError, render

    outcome = "rendered"
    try:
        rendered = render(Path(sys.argv[1]), "deploy", limits=InputLimits(max_aliases=int(sys.argv[2])))
        bodies = [jsonfast.dumps(m.obj) for m in rendered.manifests]  # a plan holds every object's body
        outcome += f" {sum(len(b) for b in bodies)} bytes of JSON"
    except RenderError as exc:
        outcome = str(exc)
    # VmHWM, not ru_maxrss: Linux carries the high-water mark of the image a process exec'd from into
    # ru_maxrss, so a probe started by a long test session would report that session's size.
    status = Path("/proc/self/status").read_text()
    peak_kib = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")))
    print(json.dumps({"outcome": outcome, "peak_kib": peak_kib}))
    """
)


def peak(repo: Path, max_aliases: int) -> tuple[str, float]:
    """What rendering ``repo``'s ``deploy`` said, and the peak RSS (MiB) of the process that did it."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(repo), str(max_aliases)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    result = json.loads(done.stdout)
    return result["outcome"], result["peak_kib"] / 1024


def test_peak_memory_of_sixteen_bombs_is_bounded(tmp_path: Path):
    """The attack as reported, each render in a process of its own, its peak RSS bounded.

    At the default settings: sixteen files, each under the old per-file bound (54 aliases, ~19 MB by
    the old count) and each expanding to ~33 MB of JSON; this took the worker to gigabytes. Then
    with the alias bound raised, fifteen bombs that together stay just under the byte bound, so the
    render is accepted: the most memory a render can take. The figures are printed (``-s``).
    """
    repo = write(tmp_path / "refused", {f"deploy/part-{i:02}.yaml": bomb(f"p{i}", 9, 7, "lol") for i in range(16)})
    outcome, refused_mib = peak(repo, InputLimits().max_aliases)
    assert "refused: the YAML expands to more than 33554432 bytes" in outcome, outcome
    assert refused_mib < 160, f"peak RSS {refused_mib:.0f} MiB"
    repo = write(tmp_path / "edge", {f"deploy/part-{i:02}.yaml": bomb(f"p{i}", 8, 6, "lol") for i in range(15)})
    outcome, edge_mib = peak(repo, 10_000)
    assert outcome.startswith("rendered"), outcome
    assert edge_mib < 256, f"peak RSS {edge_mib:.0f} MiB"
    print(f"peak RSS: refused at the defaults {refused_mib:.0f} MiB; accepted at the byte bound {edge_mib:.0f} MiB")
