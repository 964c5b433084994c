import os
from pathlib import Path

import pytest

from mergeway.render import RenderError, render
from mergeway.render.manifests import parse_manifests
from tests.conftest import SHARED

MANIFESTS = SHARED / "manifests"


def test_guestbook_folder_renders_every_object_once_and_flags_the_real_conflict():
    rendered = render(MANIFESTS, "kubernetes-examples/web/guestbook")
    kinds = sorted((m.kind, m.name) for m in rendered.manifests)
    assert kinds == sorted(
        [
            ("Deployment", "frontend"),
            ("Deployment", "redis-master"),
            ("Deployment", "redis-replica"),
            ("Service", "frontend"),
            ("Service", "redis-master"),
            ("Service", "redis-replica"),
            ("ReplicationController", "frontend"),
            ("ReplicationController", "redis-master"),
            ("ReplicationController", "redis-replica"),
        ]
    )
    # The container named `slave` vs `replica` is the one real difference upstream.
    assert len(rendered.warnings) == 1 and "redis-replica" in rendered.warnings[0]


def test_kustomize_overlay_renders_namespace_and_hashed_configmap():
    rendered = render(MANIFESTS, "podinfo/deploy/overlays/staging")
    assert rendered.renderer == "kustomize"
    names = {(m.kind, m.name) for m in rendered.manifests}
    assert ("Namespace", "staging") in names
    assert any(kind == "ConfigMap" and name.startswith("redis-config-") for kind, name in names)
    assert all(m.namespace == "staging" for m in rendered.manifests if m.kind != "Namespace")
    # The LabelTransformer config beside the overlay is kustomize config, never an object.
    assert not any(m.api_version == "builtin" for m in rendered.manifests)


def test_helm_chart_renders_without_test_hooks():
    rendered = render(MANIFESTS, "podinfo/charts/podinfo", namespace="web", release="podinfo")
    assert rendered.renderer == "helm"
    kinds = sorted(m.kind for m in rendered.manifests)
    assert kinds == ["Deployment", "Service"]


def test_unquoted_dates_stay_strings_and_trailing_tabs_are_accepted():
    text = "apiVersion: v1\nkind: ConfigMap\t\nmetadata:\t\n  name: x\ndata:\n  day: 2024-01-01\n"
    [m] = parse_manifests(text, "x.yaml")
    assert m.obj["data"]["day"] == "2024-01-01"


@pytest.mark.parametrize("path", ["../outside", "/etc", "a/../../b"])
def test_paths_outside_the_repository_are_refused(tmp_path: Path, path: str):
    with pytest.raises(RenderError, match="relative|outside"):
        render(tmp_path, path)


def test_symlink_out_of_the_repository_is_refused(tmp_path: Path):
    (tmp_path / "deploy").mkdir()
    os.symlink("/etc", tmp_path / "deploy" / "etc")
    with pytest.raises(RenderError, match="symlink"):
        render(tmp_path, "deploy")


def test_kustomization_reaching_outside_is_refused(tmp_path: Path):
    overlay = tmp_path / "repo" / "overlay"
    overlay.mkdir(parents=True)
    (overlay / "kustomization.yaml").write_text("resources:\n  - ../../../secrets\n")
    with pytest.raises(RenderError, match="outside the repository"):
        render(tmp_path / "repo", "overlay")


def test_invalid_yaml_names_file_and_line(tmp_path: Path):
    (tmp_path / "bad.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [oops\n")
    with pytest.raises(RenderError, match=r"bad.yaml: line \d+"):
        render(tmp_path, ".")


def test_helm_errors_reach_the_user(tmp_path: Path):
    chart = tmp_path / "chart"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: c\nversion: 0.1.0\n")
    (chart / "templates" / "x.yaml").write_text("{{ .Values.nope.deeper }}\n")
    with pytest.raises(RenderError, match="helm failed: .*nil pointer|helm failed: .*nope"):
        render(tmp_path, "chart")


def test_repository_reached_through_a_symlink_renders(tmp_path: Path):
    (tmp_path / "real" / "deploy").mkdir(parents=True)
    (tmp_path / "real" / "deploy" / "cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    rendered = render(tmp_path / "link", "deploy")
    assert [(m.kind, m.name, m.source) for m in rendered.manifests] == [("ConfigMap", "c", "deploy/cm.yaml")]
