"""A pull request's repository is hostile input to the renderers (issue 9, findings 1, 2 and 6).

Everything here runs the real ``kubectl kustomize`` and ``helm template`` as shipped, on repositories
built the way an attacker would write them. What a user would notice is asserted: no command from
the repository ran (no marker file), nothing was fetched (the local HTTP server saw no request),
and the render was refused with a message naming the file and field at fault.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from mergeway import config, proc
from mergeway.binaries import find
from mergeway.config import Settings
from mergeway.render import RenderError, kustomize, render
from mergeway.repoconfig import RepoConfigError, parse
from tests.security.hostile import REMOTE_BASES, alias_bomb, gitconfig, recording_server

CM = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\ndata:\n  k: v\n"


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def kustomization(fields: dict[str, Any]) -> str:
    return yaml.safe_dump({"resources": ["cm.yaml"], **fields})


def refusal(root: Path, path: str = "deploy", **kwargs: Any) -> str:
    """The RenderError message for rendering ``path``; fails the test if the render succeeds."""
    with pytest.raises(RenderError) as caught:
        render(root, path, **kwargs)
    return str(caught.value)


def skip_the_reference_check(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pretend the kustomization check missed everything, to show what the sandbox holds by itself.

    ``raising`` stays on: if the check is renamed, these tests fail instead of testing nothing.
    """
    monkeypatch.setattr(kustomize, "check_kustomization", lambda *args, **kwargs: set())


# --- Finding 1: a kustomization runs commands on the worker ------------------------------------


@pytest.mark.parametrize("field", ["resources", "bases", "components"])
def test_committed_gitconfig_and_remote_bases_run_no_command(tmp_path: Path, field: str):
    marker = tmp_path / "marker"
    problems = []
    for spelling in REMOTE_BASES:
        repo = tmp_path / f"repo-{abs(hash(spelling))}"
        write(
            repo,
            {
                ".gitconfig": gitconfig(marker),
                "deploy/.gitconfig": gitconfig(marker),
                "deploy/cm.yaml": CM,
                "deploy/kustomization.yaml": kustomization({field: [spelling]}),
            },
        )
        try:
            message = refusal(repo)
        except pytest.fail.Exception:
            problems.append(f"{spelling}: rendered")
            continue
        if marker.exists():
            problems.append(f"{spelling}: a command from the repository ran: {marker.read_text().strip()}")
            marker.unlink()
        if f"deploy/kustomization.yaml: {field}" not in message or spelling not in message:
            problems.append(f"{spelling}: the refusal does not name the file, field and value: {message}")
    assert not problems, "\n".join(problems)


def test_the_sandbox_alone_keeps_git_from_kustomize(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Even if the reference check missed a spelling, kustomize finds no git and reads no .gitconfig."""
    marker = tmp_path / "marker"
    repo = write(
        tmp_path / "repo",
        {
            "deploy/.gitconfig": gitconfig(marker),
            "deploy/kustomization.yaml": yaml.safe_dump({"resources": ["git@127.0.0.1:org/repo.git"]}),
        },
    )
    monkeypatch.setenv("HOME", str(repo / "deploy"))  # the worker's own HOME holds a hostile config too
    skip_the_reference_check(monkeypatch)
    message = refusal(repo)
    assert not marker.exists(), marker.read_text()
    assert "no 'git' program on path" in message  # kustomize could not even find git


# --- Finding 2: kustomize fetches URLs ----------------------------------------------------------

URL_FIELDS: list[tuple[str, Any]] = [
    ("resources", lambda u: {"resources": ["cm.yaml", f"{u}/resource.yaml"]}),
    ("bases", lambda u: {"bases": [f"{u}/base"]}),
    ("components", lambda u: {"components": [f"{u}/component"]}),
    ("patches[0].path", lambda u: {"patches": [{"path": f"{u}/patch.yaml"}]}),
    ("patchesStrategicMerge", lambda u: {"patchesStrategicMerge": [f"{u}/smp.yaml"]}),
    (
        "patchesJson6902[0].path",
        lambda u: {
            "patchesJson6902": [{"target": {"version": "v1", "kind": "ConfigMap", "name": "app"}, "path": f"{u}/j"}]
        },
    ),
    ("configMapGenerator[0].files", lambda u: {"configMapGenerator": [{"name": "g", "files": [f"{u}/file.txt"]}]}),
    ("configMapGenerator[0].files", lambda u: {"configMapGenerator": [{"name": "g", "files": [f"key={u}/f.txt"]}]}),
    ("configMapGenerator[0].envs", lambda u: {"configMapGenerator": [{"name": "g", "envs": [f"{u}/vars.env"]}]}),
    ("configMapGenerator[0].env", lambda u: {"configMapGenerator": [{"name": "g", "env": f"{u}/vars.env"}]}),
    ("secretGenerator[0].files", lambda u: {"secretGenerator": [{"name": "s", "files": [f"{u}/secret.txt"]}]}),
    ("replacements[0].path", lambda u: {"replacements": [{"path": f"{u}/replacements.yaml"}]}),
    ("configurations", lambda u: {"configurations": [f"{u}/configuration.yaml"]}),
    ("crds", lambda u: {"crds": [f"{u}/crd.json"]}),
    ("openapi.path", lambda u: {"openapi": {"path": f"{u}/schema.json"}}),
    ("transformers", lambda u: {"transformers": [f"{u}/transformer.yaml"]}),
    ("generators", lambda u: {"generators": [f"{u}/generator.yaml"]}),
    ("validators", lambda u: {"validators": [f"{u}/validator.yaml"]}),
]


def test_a_url_in_any_kustomization_field_reaches_no_server(tmp_path: Path):
    problems = []
    with recording_server() as server:
        for i, (field, make) in enumerate(URL_FIELDS):
            repo = write(
                tmp_path / f"repo-{i}",
                {"deploy/cm.yaml": CM, "deploy/kustomization.yaml": kustomization(make(server.url))},
            )
            try:
                message = refusal(repo)
            except pytest.fail.Exception:
                problems.append(f"{field}: rendered")
                continue
            if f"deploy/kustomization.yaml: {field}" not in message:
                problems.append(f"{field}: the refusal does not name the file and field: {message}")
        # The same, one level down: a URL in a base the overlay uses.
        repo = write(
            tmp_path / "repo-base",
            {
                "base/cm.yaml": CM,
                "base/kustomization.yaml": kustomization(URL_FIELDS[6][1](server.url)),
                "deploy/kustomization.yaml": yaml.safe_dump({"resources": ["../base"]}),
            },
        )
        try:
            if "base/kustomization.yaml: configMapGenerator[0].files" not in refusal(repo):
                problems.append("a URL in a base: the refusal does not name the base's file and field")
        except pytest.fail.Exception:
            problems.append("a URL in a base: rendered")
        if server.requests:
            problems.append(f"the renderer fetched {server.requests}")
    assert not problems, "\n".join(problems)


def test_the_sandbox_alone_sends_no_request_off_the_machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Even if the reference check missed a URL, kustomize's HTTP goes to a proxy that leads nowhere.

    Go never proxies loopback addresses (127.0.0.0/8, ::1, ``localhost``), so the URL names the
    server as ``0.0.0.0``: not loopback to Go, so proxied, yet a connection to it reaches the local
    server (Linux sends 0.0.0.0 to this host). Every machine has it, so nothing is skipped.
    """
    skip_the_reference_check(monkeypatch)
    with recording_server("0.0.0.0") as server:
        fields = {"configMapGenerator": [{"name": "g", "files": [f"{server.url}/file.txt"]}]}
        repo = write(tmp_path, {"deploy/cm.yaml": CM, "deploy/kustomization.yaml": kustomization(fields)})
        message = refusal(repo)
        assert server.requests == [], f"the renderer fetched {server.requests}"
    assert "127.0.0.1:9" in message  # kustomize's own words: the (nowhere) proxy refused the connection


def test_helm_charts_plugins_and_krm_functions_are_refused(tmp_path: Path):
    marker = tmp_path / "marker"
    script = f"#!/bin/sh\nid > {marker}\ncat\n"
    function = {
        "apiVersion": "example.com/v1",
        "kind": "Hook",
        "metadata": {"name": "f", "annotations": {"config.kubernetes.io/function": "exec:\n  path: ./hook.sh\n"}},
    }
    cases: list[tuple[dict[str, Any], str]] = [
        ({"helmCharts": [{"name": "x", "repo": "https://127.0.0.1/charts", "version": "1"}]}, "helmCharts"),
        ({"helmGlobals": {"chartHome": "charts"}}, "helmGlobals"),
        ({"transformers": ["function.yaml"]}, "transformers: deploy/function.yaml is a KRM function"),
        ({"generators": ["plugin.yaml"]}, "generators: deploy/plugin.yaml configures Inflator plugin"),
        ({"generators": ["inflate.yaml"]}, "generators: deploy/inflate.yaml: Helm chart inflation is not allowed"),
        ({"transformers": [yaml.safe_dump(function)]}, "transformers: an inline configuration is a KRM function"),
        ({"sneaky": ["x"]}, "sneaky: unknown kustomization field"),
        (
            {"configMapGenerator": [{"name": "g", "kvSources": [{"pluginType": "go", "name": "x"}]}]},
            "configMapGenerator[0]: unknown generator field(s) kvSources",
        ),
    ]
    problems = []
    for i, (fields, expected) in enumerate(cases):
        repo = write(
            tmp_path / f"repo-{i}",
            {
                "deploy/cm.yaml": CM,
                "deploy/hook.sh": script,
                "deploy/function.yaml": yaml.safe_dump(function),
                "deploy/plugin.yaml": "apiVersion: example.com/v1\nkind: Inflator\nmetadata:\n  name: p\n",
                "deploy/inflate.yaml": "apiVersion: builtin\nkind: HelmChartInflationGenerator\nmetadata:\n  name: h\n",
                "deploy/kustomization.yaml": kustomization(fields),
            },
        )
        (repo / "deploy/hook.sh").chmod(0o755)
        try:
            message = refusal(repo)
        except pytest.fail.Exception:
            problems.append(f"{fields}: rendered")
            continue
        if f"deploy/kustomization.yaml: {expected}" not in message:
            problems.append(f"{fields}: unclear refusal: {message}")
    assert not marker.exists()
    assert not problems, "\n".join(problems)


def test_local_kustomize_features_still_render(tmp_path: Path):
    """The checks refuse remote content only: bases, components, patches, generators, replacements
    and builtin transformers from the repository work as before."""
    repo = write(
        tmp_path,
        {
            "base/cm.yaml": CM,
            "base/kustomization.yaml": yaml.safe_dump({"resources": ["cm.yaml"]}),
            "components/extra/kustomization.yaml": yaml.safe_dump(
                {"apiVersion": "kustomize.config.k8s.io/v1alpha1", "kind": "Component", "commonLabels": {"c": "1"}}
            ),
            "deploy/app.properties": "a=1\n",
            "deploy/vars.env": "B=2\n",
            "deploy/patch.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\ndata:\n  patched: 'yes'\n",
            "deploy/replacements.yaml": yaml.safe_dump(
                [
                    {
                        "source": {"kind": "ConfigMap", "name": "app", "fieldPath": "data.k"},
                        "targets": [
                            {
                                "select": {"kind": "ConfigMap", "name": "app"},
                                "fieldPaths": ["data.copy"],
                                "options": {"create": True},
                            }
                        ],
                    }
                ]
            ),
            "deploy/prefix.yaml": "apiVersion: builtin\nkind: PrefixSuffixTransformer\nmetadata:\n  name: p\n"
            "prefix: pre-\nfieldSpecs:\n- path: metadata/name\n",
            "deploy/kustomization.yaml": yaml.safe_dump(
                {
                    "resources": ["../base"],
                    "components": ["../components/extra"],
                    "patches": [{"path": "patch.yaml"}],
                    "configMapGenerator": [{"name": "gen", "files": ["conf=app.properties"], "envs": ["vars.env"]}],
                    "replacements": [{"path": "replacements.yaml"}],
                    "transformers": ["prefix.yaml"],
                }
            ),
        },
    )
    rendered = render(repo, "deploy")
    by_name = {m.name.rsplit("-", 1)[0] if m.name.startswith("pre-gen") else m.name: m.obj for m in rendered.manifests}
    assert by_name["pre-app"]["data"] == {"k": "v", "patched": "yes", "copy": "v"}
    assert by_name["pre-gen"]["data"] == {"conf": "a=1\n", "B": "2"}
    assert by_name["pre-app"]["metadata"]["labels"] == {"c": "1"}


# --- Helm: no download, no cluster, nothing outside the repository --------------------------------


def chart(extra: dict[str, Any] | None = None) -> dict[str, str]:
    meta = {"apiVersion": "v2", "name": "app", "version": "0.1.0", **(extra or {})}
    template = (
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: live\n"
        'data:\n  ns: {{ (lookup "v1" "Namespace" "" "default") | toJson | quote }}\n'
    )
    return {"chart/Chart.yaml": yaml.safe_dump(meta), "chart/templates/cm.yaml": template}


def test_helm_lookup_sees_no_cluster_even_with_a_kubeconfig_around(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    with recording_server() as server:
        kubeconfig = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "c", "cluster": {"server": server.url}}],
            "users": [{"name": "u", "user": {"token": "worker-token"}}],
            "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
            "current-context": "c",
        }
        repo = write(tmp_path, {**chart(), "home/.kube/config": yaml.safe_dump(kubeconfig)})
        monkeypatch.setenv("MERGEWAY_HELM", find("helm"))  # found through HOME, which changes next
        monkeypatch.setenv("KUBECONFIG", str(repo / "home/.kube/config"))
        monkeypatch.setenv("HOME", str(repo / "home"))
        rendered = render(repo, "chart", release="r")
        assert server.requests == []
    assert rendered.manifests[0].obj["data"]["ns"] in ("{}", "null")


def test_helm_dependencies_are_never_downloaded_nor_read_from_outside(tmp_path: Path):
    with recording_server() as server:
        remote = chart({"dependencies": [{"name": "redis", "version": "1.0.0", "repository": server.url}]})
        message = refusal(write(tmp_path / "remote", remote), "chart")
        assert "chart/Chart.yaml: dependency 'redis' is not in chart/charts/" in message
        assert "never downloads" in message
        assert server.requests == []
    outside = write(tmp_path / "outside", {"dep/Chart.yaml": "apiVersion: v2\nname: dep\nversion: 0.1.0\n"})
    local = chart({"dependencies": [{"name": "dep", "version": "0.1.0", "repository": f"file://{outside}/dep"}]})
    message = refusal(write(tmp_path / "local", local), "chart")
    assert "chart/Chart.yaml: dependency 'dep'" in message and "leads outside the repository" in message


def test_helm_values_files_must_be_files_in_the_repository(tmp_path: Path):
    repo = write(tmp_path, {**chart(), "values/prod.yaml": "x: 1\n"})
    message = refusal(repo, "chart", values=["values"])
    assert "helm values file 'values' is not a file" in message
    message = refusal(repo, "chart", values=["../../etc/passwd"])
    assert "helm values file" in message


# --- Finding 6 (input half): bounded input ----------------------------------------------------------


def test_a_yaml_alias_bomb_is_refused_with_a_clear_message(tmp_path: Path):
    bomb = alias_bomb()
    assert len(bomb) < 500  # a few hundred bytes that expand to 9**9 strings
    repo = write(tmp_path, {"deploy/bomb.yaml": bomb, "single.yaml": bomb, ".mergeway.yaml": bomb})
    for path in ("deploy", "single.yaml"):
        message = refusal(repo, path)
        assert "bomb.yaml" in message or "single.yaml" in message
        assert "refused: the YAML expands to more than" in message and "MERGEWAY_MAX_RENDERED_BYTES" in message
    with pytest.raises(RepoConfigError, match="refused: the YAML expands"):
        parse(bomb)
    kustomized = write(tmp_path / "k", {"deploy/kustomization.yaml": "resources: []\n" + bomb[bomb.index("data:") :]})
    assert "deploy/kustomization.yaml: refused" in refusal(kustomized)


def test_recursive_aliases_deep_nesting_and_many_aliases_are_refused(tmp_path: Path):
    from mergeway.limits import InputLimits

    repo = write(
        tmp_path,
        {
            "recursive.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: &m\n  name: r\n  labels: *m\n",
            "deep.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: d\ndata: " + "[" * 500 + "]" * 500 + "\n",
            "aliases.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  labels: &l {x: y}\n"
            "data:\n" + "".join(f"  k{i}: *l\n" for i in range(5)),
        },
    )
    assert "recursive.yaml: refused: a YAML alias refers to itself" in refusal(repo, "recursive.yaml")
    assert "deep.yaml: refused: nesting deeper than 100 levels (MERGEWAY_MAX_YAML_DEPTH)" in refusal(repo, "deep.yaml")
    message = refusal(repo, "aliases.yaml", limits=InputLimits(max_aliases=3))
    assert "aliases.yaml: refused: more than 3 YAML aliases" in message


def test_object_count_and_rendered_size_are_capped(tmp_path: Path):
    from mergeway.limits import InputLimits

    many = {f"deploy/cm-{i}.yaml": CM.replace("name: app", f"name: cm-{i}") for i in range(11)}
    flood = "{{- range until 30000 }}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c{{ . }}\n{{- end }}\n"
    repo = write(tmp_path, {**many, **chart(), "chart/templates/flood.yaml": flood})
    message = refusal(repo, limits=InputLimits(max_objects=10))
    assert "deploy: refused: 11 objects, more than 10 (MERGEWAY_MAX_OBJECTS)" in message
    message = refusal(repo, limits=InputLimits(max_bytes=500))
    assert "input files are larger than 500 bytes together (MERGEWAY_MAX_RENDERED_BYTES)" in message
    message = refusal(repo, "chart", release="r", limits=InputLimits(max_bytes=1024 * 1024))
    assert "helm failed: refused: the output is larger than 1048576 bytes (MERGEWAY_MAX_RENDERED_BYTES)" in message


def test_limits_come_from_settings():
    from mergeway.limits import InputLimits

    settings = Settings.from_env({"MERGEWAY_MAX_OBJECTS": "7", "MERGEWAY_MAX_RENDERED_BYTES": "4096"})
    assert settings.input_limits() == InputLimits(max_objects=7, max_bytes=4096, max_depth=100)


# --- Secrets are not inherited by renderers ----------------------------------------------------------


def test_secrets_leave_the_environment_once_settings_are_read(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(config, "_held_secrets", {})
    monkeypatch.setenv("GITHUB_TOKEN", "ghp-worker-token")
    monkeypatch.setenv("GITLAB_WEBHOOK_SECRET", "hook-secret")
    monkeypatch.setenv("MERGEWAY_FORGES", "github")
    config.scrub_secrets()
    assert "GITHUB_TOKEN" not in os.environ and "GITLAB_WEBHOOK_SECRET" not in os.environ
    assert Settings.from_env().github_token == "ghp-worker-token"  # still readable by this process
    with proc.sandbox() as box:
        assert not any("token" in v or "secret" in v for v in box.env.values())
        result = proc.run([find("kubectl"), "version", "--client"], env=box.env, timeout=60)
    assert "Client Version" in result.stdout
