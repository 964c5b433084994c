"""Render a Helm chart with ``helm template``: client-side only, never against a cluster.

A chart in a pull request is hostile input, so before helm runs:

- dependencies must already be in the chart's ``charts/`` directory (helm never downloads one
  here), and a ``file://`` dependency must stay inside the repository;
- values files named in ``.mergeway.yaml`` must be files inside the repository.

``helm template`` then runs in :func:`mergeway.proc.sandbox`: no KUBECONFIG and an empty HOME (so a
chart's ``lookup`` returns nothing instead of reading live Secrets into a PR comment), helm's
cache/config/data/plugin/registry paths inside that HOME, no proxy that leads anywhere, and its
output bounded; it may read only the repository (``.Files.Get`` of a symlink to ``/proc/1/environ``
or a secret mount is refused by the kernel) and its memory and CPU time are limited
(:class:`mergeway.proc.Confinement`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from mergeway import binaries, proc, yamlsafe
from mergeway.limits import DEFAULT_LIMITS, InputLimits, LimitError, read_text
from mergeway.render.manifests import Manifest, parse_manifests
from mergeway.render.paths import PathError, confine

#: Used when the target cluster's version is not known (the local cluster's version).
DEFAULT_KUBE_VERSION = "v1.36.0"


def _load(root: Path, file: Path, limits: InputLimits) -> Any:
    source = str(file.relative_to(root))
    try:
        return yamlsafe.safe_load(read_text(file, source, limits), source=source, limits=limits)
    except LimitError as exc:
        raise PathError(str(exc)) from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise PathError(f"{source}: not valid YAML ({exc})") from None


def _dependencies(root: Path, chart: Path, limits: InputLimits) -> list[tuple[str, dict[str, Any]]]:
    """(file, entry) for each dependency declared in Chart.yaml (v2) or requirements.yaml (v1)."""
    found: list[tuple[str, dict[str, Any]]] = []
    for name, key in (("Chart.yaml", "dependencies"), ("requirements.yaml", "dependencies")):
        file = chart / name
        if not file.is_file():
            continue
        data = _load(root, file, limits)
        deps = (data or {}).get(key) if isinstance(data, dict) else None
        if deps is None:
            continue
        if not isinstance(deps, list) or not all(isinstance(d, dict) for d in deps):
            raise PathError(f"{file.relative_to(root)}: {key} must be a list of mappings")
        found += [(str(file.relative_to(root)), d) for d in deps]
    return found


def _vendored(chart: Path, name: str) -> bool:
    """Whether a dependency is in ``charts/`` (as a directory or a packaged ``.tgz``)."""
    charts = chart / "charts"
    return (charts / name / "Chart.yaml").is_file() or any(charts.glob(f"{name}-*.tgz"))


def check_chart(root: Path, chart: Path, limits: InputLimits = DEFAULT_LIMITS) -> None:
    """Refuse a chart whose dependencies would be downloaded or read from outside the repository.

    Vendored subcharts (``charts/<name>/``) are checked the same way: helm loads their dependencies too.
    """
    for sub in sorted((chart / "charts").glob("*/Chart.yaml")):
        check_chart(root, sub.parent, limits)
    for source, dep in _dependencies(root, chart, limits):
        name, repository = str(dep.get("name") or ""), str(dep.get("repository") or "")
        where = f"{source}: dependency {name!r}"
        if not name or "/" in name or name.startswith("."):
            raise PathError(f"{where}: invalid dependency name")
        if repository.startswith("file://"):
            relative = repository[len("file://") :]
            target = (chart / relative).resolve()
            if target != root and root not in target.parents:
                raise PathError(f"{where}: {repository!r} leads outside the repository")
        if not _vendored(chart, name):
            raise PathError(
                f"{where} is not in {chart.relative_to(root)}/charts/: Mergeway never downloads chart "
                "dependencies; run `helm dependency build` and commit the result"
            )


def render_helm(
    root: Path,
    chart: Path,
    *,
    release: str,
    namespace: str,
    values: Sequence[str] = (),
    kube_version: str = "",
    limits: InputLimits = DEFAULT_LIMITS,
    timeout: float = 120.0,
) -> list[Manifest]:
    root = root.resolve()
    check_chart(root, chart, limits)
    helm = binaries.find("helm")
    argv = [helm, "template", release, str(chart), "--skip-tests", "--include-crds"]
    if namespace:
        argv += ["--namespace", namespace]
    # Charts gate templates on .Capabilities.KubeVersion; without this helm assumes its own default.
    # A development build of Kubernetes reports v0.0.0-...; charts would refuse it, so assume the default.
    if not kube_version or kube_version.startswith("v0."):
        kube_version = DEFAULT_KUBE_VERSION
    argv += ["--kube-version", kube_version]
    for value_file in values:
        path = confine(root, value_file, what="helm values file")
        if not path.is_file():
            raise PathError(f"helm values file {value_file!r} is not a file in this commit")
        argv += ["--values", str(path)]
    with proc.sandbox(readable=[root]) as box:
        home = box.home
        env = {
            **box.env,
            "HELM_CACHE_HOME": f"{home}/cache",
            "HELM_CONFIG_HOME": f"{home}/config",
            "HELM_DATA_HOME": f"{home}/data",
            "HELM_PLUGINS": f"{home}/plugins",
            "HELM_REGISTRY_CONFIG": f"{home}/config/registry.json",
            "HELM_REPOSITORY_CONFIG": f"{home}/config/repositories.yaml",
            "HELM_REPOSITORY_CACHE": f"{home}/cache/repository",
        }
        result = proc.run(
            argv,
            cwd=str(home),
            timeout=timeout,
            env=env,
            max_output=limits.max_bytes,
            output_setting="MERGEWAY_MAX_RENDERED_BYTES",
            confine=box.confinement,
        )
    return parse_manifests(result.stdout, f"{chart.relative_to(root)} (helm)", limits)
