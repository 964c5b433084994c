"""Renderer processes cannot reach the worker's secrets or take its memory (issue 24, findings 1 and 2).

The process side of the second audit: whatever path a chart or kustomization makes ``helm template``
or ``kubectl kustomize`` open, the kernel refuses everything outside the repository, and a template
that allocates or computes without end is stopped by a limit with a message naming the setting.

Each test starts a stand-in worker (``render_probe.py``) with a secret in its environment, exactly
as a worker fed by ``envFrom`` holds one in ``/proc/<pid>/environ`` for its whole life, plus a
secret file beside the repository (a mounted Secret). The renderers are the real ``helm`` and
``kubectl`` as shipped. The ``run`` mode goes around the render layer's static checks, so the
process layer is shown to hold on its own, even where a symlink inside the render directory points
at the secret.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

PROBE = Path(__file__).with_name("render_probe.py")
SECRET = "mergeway-test-secret-5ee0b1c3"
MiB = 1024 * 1024
CHART = "apiVersion: v2\nname: c\nversion: 0.1.0\n"


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def probe(mode: str, root: Path, target: str, env: dict[str, str] | None = None, timeout: float = 200) -> Any:
    """Run the stand-in worker, with :data:`SECRET` in its environment; its JSON report."""
    environment = {**os.environ, "MERGEWAY_TEST_FORGE_TOKEN": SECRET, **(env or {})}
    done = subprocess.run(
        [sys.executable, str(PROBE), mode, str(root), str(root / target)],
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    """A mounted secret outside the repository: the worker may read it, a renderer must not."""
    mounted = tmp_path / "secrets"
    mounted.mkdir()
    (mounted / "GITHUB_TOKEN").write_text(SECRET)
    return mounted / "GITHUB_TOKEN"


def leaking_chart(root: Path, secret_file: Path) -> None:
    """A chart that puts a mounted secret into its output by every route: a symlinked file, a
    symlinked directory, and ``.Files.Glob`` over it."""
    write(
        root,
        {
            "chart/Chart.yaml": CHART,
            "chart/templates/cm.yaml": (
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: leak}\ndata:\n"
                '  file: {{ .Files.Get "secret" | quote }}\n'
                '  dir: {{ .Files.Get "mounted/GITHUB_TOKEN" | quote }}\n'
                '  glob: {{ range $p, $b := .Files.Glob "mounted/*" }}{{ $b | toString | quote }}{{ end }}\n'
            ),
        },
    )
    (root / "chart" / "secret").symlink_to(secret_file)
    (root / "chart" / "mounted").symlink_to(secret_file.parent, target_is_directory=True)


def test_a_chart_cannot_read_a_mounted_secret_through_symlinks(tmp_path: Path, secret_file: Path):
    root = tmp_path / "repo"
    leaking_chart(root, secret_file)
    report = probe("run", root, "chart")
    assert SECRET not in json.dumps(report), report
    assert "error" in report, report  # the render fails: nothing to preview, nothing leaked


def test_a_chart_cannot_read_the_workers_environment(tmp_path: Path):
    """The stand-in worker links ``/proc/<its own pid>/environ`` into the chart before rendering,
    as a PR that guessed the pid would (pids in a pod are small and few; in the shipped pod PID 1
    is tini, whose environment held the Secret under ``envFrom``: the same ``/proc`` route)."""
    root = tmp_path / "repo"
    write(
        root,
        {
            "chart/Chart.yaml": CHART,
            "chart/templates/cm.yaml": (
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: leak}\ndata:\n"
                '  env: {{ .Files.Get "files/worker" | quote }}\n'
            ),
        },
    )
    report = probe("run", root, "chart", env={"PROBE_LINK_PROC": str(root / "chart" / "files")})
    assert (root / "chart" / "files" / "worker").readlink() == Path(f"/proc/{report['pid']}/environ")
    assert SECRET not in json.dumps(report), report
    assert "permission denied" in report.get("error", ""), report


def test_a_kustomization_cannot_read_the_workers_secret_file(tmp_path: Path, secret_file: Path):
    """A ConfigMap generated from a symlink to the mounted secret. kustomize's own load
    restrictor refuses it too; the probe turns that off (as a kustomize bug would), so what is
    shown here is the process layer alone."""
    root = tmp_path / "repo"
    write(
        root,
        {
            "deploy/kustomization.yaml": "configMapGenerator:\n- name: leak\n  files: [token]\n",
        },
    )
    (root / "deploy" / "token").symlink_to(secret_file)
    report = probe("run", root, "deploy")
    assert SECRET not in json.dumps(report), report
    assert "error" in report, report


def test_an_ordinary_chart_and_kustomization_still_render(tmp_path: Path):
    root = tmp_path / "repo"
    write(
        root,
        {
            "chart/Chart.yaml": CHART,
            "chart/files/app.conf": "greeting = hello\n",
            "chart/templates/cm.yaml": (
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app}\n"
                'data: {conf: {{ .Files.Get "files/app.conf" | quote }}}\n'
            ),
            "deploy/kustomization.yaml": "resources: [cm.yaml]\nnamePrefix: k-\n",
            "deploy/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app}\ndata: {k: v}\n",
        },
    )
    chart = probe("render", root, "chart")
    assert "greeting = hello" in chart["stdout"], chart
    kust = probe("render", root, "deploy")
    assert "k-app" in kust["stdout"], kust


def test_a_template_that_doubles_a_string_is_stopped_by_the_memory_limit(tmp_path: Path):
    """120 bytes of template that reached 1 GB in 3 s on the unconfined main; here the renderer
    stops at the limit, the message names the setting, and neither process grows past it."""
    root = tmp_path / "repo"
    write(
        root,
        {
            "chart/Chart.yaml": CHART,
            "chart/templates/x.yaml": (
                '{{- $s := "aaaaaaaaaaaaaaaa" }}{{- range until 40 }}{{- $s = print $s $s }}{{- end }}\n'
                "a: {{ len $s }}\n"
            ),
        },
    )
    limit = 256 * MiB
    report = probe("render", root, "chart", env={"MERGEWAY_RENDER_MEMORY_BYTES": str(limit)})
    assert "needed more than 256 MiB of memory (MERGEWAY_RENDER_MEMORY_BYTES)" in report.get("error", ""), report
    # Resident memory also counts the tool's own code (helm is a 60 MB binary) beside the heap.
    assert report["renderer_peak_bytes"] <= limit + 128 * MiB, report
    assert report["worker_peak_bytes"] <= 256 * MiB, report
    renderer, worker = report["renderer_peak_bytes"] / MiB, report["worker_peak_bytes"] / MiB
    print(f"peak resident memory: renderer {renderer:.0f} MiB, worker {worker:.0f} MiB")


def test_a_template_that_burns_cpu_is_stopped_by_the_cpu_limit(tmp_path: Path):
    """A billion loop iterations: on the unconfined main it runs until the wall-clock timeout
    (holding a CPU of the worker's pod all that time); here the kernel stops it after 2 s of CPU."""
    root = tmp_path / "repo"
    write(
        root,
        {
            "chart/Chart.yaml": CHART,
            "chart/templates/x.yaml": (
                "{{- range until 1000 }}{{- range until 1000 }}{{- range until 1000 }}{{- end }}{{- end }}{{- end }}\n"
                "a: b\n"
            ),
        },
    )
    report = probe("render", root, "chart", env={"MERGEWAY_RENDER_CPU_SECONDS": "2"})
    assert "used more than 2 s of CPU time (MERGEWAY_RENDER_CPU_SECONDS)" in report.get("error", ""), report


def test_a_renderer_that_cannot_be_confined_is_refused_not_run_unconfined(tmp_path: Path):
    """Fail closed: when the ruleset cannot be built (here: a path to grant is gone), the tool
    never starts, and the error says why and names the setting."""
    from mergeway import binaries, proc

    root = tmp_path / "repo"
    write(root, {"chart/Chart.yaml": CHART, "chart/templates/cm.yaml": "a: rendered\n"})
    with proc.sandbox(readable=[root, tmp_path / "gone"]) as box, pytest.raises(proc.ToolError) as caught:
        proc.run(
            [binaries.find("helm"), "template", "r", str(root / "chart")],
            timeout=60,
            env={**box.env, "HELM_CACHE_HOME": str(box.home), "HELM_CONFIG_HOME": str(box.home)},
            confine=box.confinement,
        )
    assert "cannot confine the renderer" in caught.value.message
    assert "MERGEWAY_RENDER_ISOLATION" in caught.value.message
    assert "rendered" not in caught.value.message


# --- Where Landlock is blocked (a runtime's seccomp profile without its system calls) ---------------

NO_LANDLOCK = Path(__file__).with_name("no_landlock.py")


def test_a_render_where_landlock_is_blocked_is_refused_not_run_unconfined(tmp_path: Path, secret_file: Path):
    root = tmp_path / "repo"
    leaking_chart(root, secret_file)
    done = subprocess.run(
        [sys.executable, str(NO_LANDLOCK), sys.executable, str(PROBE), "run", str(root), str(root / "chart")],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert SECRET not in json.dumps(report), report
    assert "cannot confine the renderer (Landlock is not available" in report.get("error", ""), report


def test_the_worker_refuses_to_start_where_landlock_is_blocked(tmp_path: Path):
    worker = Path(sys.executable).parent / "mergeway-worker"
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "GITHUB_TOKEN": "t",
        "GITLAB_TOKEN": "t",
        "MERGEWAY_POLICY": "allow-all",
        "REDIS_URL": "redis://127.0.0.1:9/0",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
    }
    done = subprocess.run(
        [sys.executable, str(NO_LANDLOCK), str(worker)], env=env, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("mergeway-worker refuses to start: MERGEWAY_RENDER_ISOLATION=landlock"), done.stderr
    assert "MERGEWAY_RENDER_ISOLATION=off" in done.stderr
