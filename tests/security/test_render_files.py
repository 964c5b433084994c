"""Renderers see only the repository's own files (issue 24, findings 1, 7 and 9; file side).

Helm's chart loader follows a symlinked directory and every symlink inside it, so a chart could
read any file the worker can (``/proc/1/environ``, a mounted token) into a ConfigMap, a
``.Files.Glob`` listing or its own ``fail`` message. A base's ``kustomization.yaml`` that is a
symlink out of the repository was parsed before it was confined, so its key names came back in
the error. A chart directory named like a flag became one on ``helm template``'s command line.
Each is tried here with the real ``helm`` and ``kubectl kustomize`` as shipped, and refused; what
stays inside the repository still renders.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest
import yaml

from mergeway.render import RenderError, render

SECRET = "ghp_worker-token-0123456789"
CM = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\ndata:\n  k: v\n"


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def link(path: Path, target: str | Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to(target)


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A file of the worker's, outside any repository (as ``/proc/1/environ`` or a token mount is)."""
    file = tmp_path / "worker" / "environ"
    file.parent.mkdir()
    file.write_text(f"HOME=/home/worker\0GITHUB_TOKEN={SECRET}\0")
    return file


def chart_repo(root: Path, template: str, outside: Path | str) -> Path:
    """``deploy/chart/link -> ../../other`` (inside the repository) and ``other/env -> outside``."""
    write(
        root,
        {
            "deploy/chart/Chart.yaml": "apiVersion: v2\nname: app\nversion: 0.1.0\n",
            "deploy/chart/templates/cm.yaml": template,
            "other/README.md": "shared files\n",
        },
    )
    link(root / "deploy/chart/link", "../../other")
    link(root / "other/env", outside)
    return root


def assert_nothing_leaked(text: str) -> None:
    encoded = base64.b64encode(f"GITHUB_TOKEN={SECRET}".encode()).decode()
    assert SECRET not in text and encoded[:24] not in text and "GITHUB_TOKEN" not in text, text


TEMPLATES = {
    "Files.Get into a ConfigMap": (
        'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: leak\ndata:\n  env: {{ .Files.Get "link/env" | quote }}\n'
    ),
    "Files.Glob into a ConfigMap": (
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: leak\ndata:\n"
        '{{- range $path, $bytes := .Files.Glob "link/*" }}\n'
        "  {{ base $path }}: {{ toString $bytes | quote }}\n{{- end }}\n"
    ),
    "fail with the file in the render error": '{{ fail (.Files.Get "link/env" | b64enc) }}\n',
}


@pytest.mark.parametrize("route", TEMPLATES)
def test_a_chart_cannot_read_a_file_outside_the_repository_through_a_symlinked_directory(
    tmp_path: Path, outside: Path, route: str
):
    repo = chart_repo(tmp_path / "repo", TEMPLATES[route], outside)
    with pytest.raises(RenderError) as caught:
        rendered = render(repo, "deploy/chart", release="r")
        assert_nothing_leaked(yaml.safe_dump([m.obj for m in rendered.manifests]))
    message = str(caught.value)
    assert message == "deploy/chart/link/env is a symlink that leads outside the repository"
    assert_nothing_leaked(message)


def test_the_worker_environment_is_out_of_reach_as_well(tmp_path: Path):
    """The shipped pod's real target: the environment of a process of the worker's user."""
    repo = chart_repo(tmp_path / "repo", TEMPLATES["fail with the file in the render error"], "/proc/1/environ")
    with pytest.raises(RenderError, match="deploy/chart/link/env is a symlink that leads outside the repository"):
        render(repo, "deploy/chart", release="r")
    repo = chart_repo(tmp_path / "self", TEMPLATES["fail with the file in the render error"], f"/proc/{os.getpid()}")
    (repo / "other/env").unlink()
    link(repo / "other/env", f"/proc/{os.getpid()}/environ")
    with pytest.raises(RenderError, match="leads outside the repository"):
        render(repo, "deploy/chart", release="r")


def test_symlinks_that_stay_inside_the_repository_still_render(tmp_path: Path):
    """A chart reading shared files through a symlinked directory, and a plain environment that
    links a shared manifest, render as before: only what leaves the repository is refused."""
    repo = write(
        tmp_path,
        {
            "deploy/chart/Chart.yaml": "apiVersion: v2\nname: app\nversion: 0.1.0\n",
            "deploy/chart/templates/cm.yaml": (
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: shared\n"
                'data:\n  conf: {{ .Files.Get "link/app.conf" | quote }}\n'
                '  files: "{{ range $path, $_ := .Files.Glob "link/*" }}{{ $path }},{{ end }}"\n'
            ),
            "shared/app.conf": "level=debug\n",
            "shared/cm.yaml": CM,
        },
    )
    link(repo / "deploy/chart/link", "../../shared")
    link(repo / "plain/cm.yaml", "../shared/cm.yaml")
    [cm] = render(repo, "deploy/chart", release="r").manifests
    assert cm.obj["data"] == {"conf": "level=debug\n", "files": "link/app.conf,link/cm.yaml,"}
    [plain] = render(repo, "plain").manifests
    assert plain.obj["data"] == {"k": "v"}


def test_a_symlink_loop_is_refused(tmp_path: Path):
    repo = write(tmp_path, {"deploy/cm.yaml": CM})
    link(repo / "deploy/nested/loop", "..")
    with pytest.raises(RenderError, match="deploy/nested/loop is a symlink to a directory that contains it"):
        render(repo, "deploy")


def test_a_plain_environment_cannot_read_outside_through_a_symlinked_directory(tmp_path: Path, outside: Path):
    outside.write_text(CM.replace("k: v", f"token: {SECRET}"))
    repo = write(tmp_path / "repo", {"deploy/cm.yaml": CM, "other/README.md": "x\n"})
    link(repo / "deploy/shared", "../other")
    link(repo / "other/leak.yaml", outside)
    with pytest.raises(RenderError) as caught:
        render(repo, "deploy")
    assert str(caught.value) == "deploy/shared/leak.yaml is a symlink that leads outside the repository"


# --- Finding 7: a base's kustomization.yaml that is a symlink out -------------------------------


def test_a_kustomization_that_is_a_symlink_out_of_the_repository_is_refused_unread(tmp_path: Path):
    secret = tmp_path / "worker" / "config.yaml"
    secret.parent.mkdir()
    secret.write_text(f"{SECRET}: 1\nredis_password: hunter2\n")
    repo = write(tmp_path / "repo", {"deploy/kustomization.yaml": yaml.safe_dump({"resources": ["../base"]})})
    link(repo / "base/kustomization.yaml", secret)
    with pytest.raises(RenderError) as caught:
        render(repo, "deploy")
    message = str(caught.value)
    assert message == "base/kustomization.yaml is a symlink that leads outside the repository"
    assert SECRET not in message and "redis_password" not in message


def test_kustomize_still_renders_bases_elsewhere_in_the_repository_through_symlinks(tmp_path: Path):
    repo = write(
        tmp_path,
        {
            "shared/base/cm.yaml": CM,
            "shared/base/kustomization.yaml": yaml.safe_dump({"resources": ["cm.yaml"]}),
            "deploy/patch.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\ndata:\n  patched: 'yes'\n",
            "deploy/kustomization.yaml": yaml.safe_dump(
                {"resources": ["base"], "patches": [{"path": "patch.yaml"}], "namePrefix": "p-"}
            ),
        },
    )
    link(repo / "deploy/base", "../shared/base")
    [cm] = render(repo, "deploy").manifests
    assert cm.name == "p-app" and cm.obj["data"] == {"k": "v", "patched": "yes"}


def test_tool_errors_name_the_repository_files_not_the_private_copy(tmp_path: Path):
    repo = write(
        tmp_path, {"deploy/kustomization.yaml": yaml.safe_dump({"resources": ["cm.yaml"]}), "deploy/cm.yaml": "x"}
    )
    with pytest.raises(RenderError) as caught:
        render(repo, "deploy")
    assert "mergeway-inputs-" not in str(caught.value) and "kubectl failed" in str(caught.value)


# --- Finding 9: a chart directory named like a flag ------------------------------------------------


def test_a_chart_directory_named_like_a_flag_stays_a_name(tmp_path: Path):
    """``mergeway preview ./--enable-dns`` names the release after the directory: helm must not take
    it for ``--enable-dns``, which would let the chart resolve host names while rendering."""
    chart = write(
        tmp_path / "--enable-dns",
        {
            "Chart.yaml": "apiVersion: v2\nname: app\nversion: 0.1.0\n",
            "templates/cm.yaml": (
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: dns\n"
                'data:\n  ip: "{{ getHostByName "localhost" }}"\n'
            ),
        },
    )
    with pytest.raises(RenderError) as caught:
        render(chart, ".")  # as the CLI renders a directory it is given
    assert 'release name "--enable-dns": invalid release name' in str(caught.value)
