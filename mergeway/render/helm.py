"""Render a Helm chart with ``helm template``: client-side only, never against a cluster.

A chart in a pull request is hostile input, so before helm runs:

- dependencies must already be in the chart's ``charts/`` directory (helm never downloads one
  here), and a ``file://`` dependency must stay inside the repository;
- values files named in ``.mergeway.yaml`` must be files inside the repository.

Helm reads a private copy of the chart and values files (:mod:`mergeway.render.stage`): its
loader follows symlinks, and ``.Files.Get``/``.Files.Glob`` would print whatever they lead to.
The release name and chart are passed after ``--``, so a directory named like a flag stays a name.

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
from mergeway.limits import Budget, InputLimits, LimitError, read_text
from mergeway.render.manifests import Manifest, parse_manifests
from mergeway.render.paths import PathError, confine
from mergeway.render.stage import staged, unstaged

#: Used when the target cluster's version is not known (the local cluster's version).
DEFAULT_KUBE_VERSION = "v1.36.0"


def _load(root: Path, file: Path, budget: Budget) -> Any:
    source = str(file.relative_to(root))
    try:
        return yamlsafe.safe_load(read_text(file, source, budget.limits), source=source, budget=budget)
    except LimitError as exc:
        raise PathError(str(exc)) from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise PathError(f"{source}: not valid YAML ({exc})") from None


def _dependencies(root: Path, chart: Path, budget: Budget) -> list[tuple[str, dict[str, Any]]]:
    """(file, entry) for each dependency declared in Chart.yaml (v2) or requirements.yaml (v1)."""
    found: list[tuple[str, dict[str, Any]]] = []
    for name, key in (("Chart.yaml", "dependencies"), ("requirements.yaml", "dependencies")):
        file = chart / name
        if not file.is_file():
            continue
        data = _load(root, file, budget)
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


def check_chart(root: Path, chart: Path, budget: Budget | None = None) -> None:
    """Refuse a chart whose dependencies would be downloaded or read from outside the repository.

    Vendored subcharts (``charts/<name>/``) are checked the same way: helm loads their dependencies too.
    """
    budget = budget or Budget()
    for sub in sorted((chart / "charts").glob("*/Chart.yaml")):
        check_chart(root, sub.parent, budget)
    for source, dep in _dependencies(root, chart, budget):
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
    budget: Budget | None = None,
    timeout: float = 120.0,
) -> list[Manifest]:
    """``helm template`` of ``chart`` (a directory under ``root``), run on a private copy of it."""
    root = root.resolve()
    budget = budget or Budget()
    limits = budget.limits
    value_files = []
    for value_file in values:
        path = confine(root, value_file, what="helm values file")
        if not path.is_file():
            raise PathError(f"helm values file {value_file!r} is not a file in this commit")
        value_files.append(path)
    with staged(root, [chart, *value_files], limits) as copy:
        inner = copy / chart.relative_to(root)
        check_chart(copy, inner, budget)
        argv = [binaries.find("helm"), "template", "--skip-tests", "--include-crds"]
        if namespace:
            argv += ["--namespace", namespace]
        # Charts gate templates on .Capabilities.KubeVersion; without this helm assumes its own default.
        # A development build of Kubernetes reports v0.0.0-...; charts would refuse it, so assume the default.
        if not kube_version or kube_version.startswith("v0."):
            kube_version = DEFAULT_KUBE_VERSION
        argv += ["--kube-version", kube_version]
        for path in value_files:
            argv += ["--values", str(copy / path.relative_to(root))]
        argv += ["--", release, str(inner)]  # names, never flags, whatever they look like
        try:
            result = _run(argv, timeout, limits, copy)
        except proc.ToolError as exc:
            raise proc.ToolError(exc.tool, unstaged(exc.message, copy)) from None
    return parse_manifests(result.stdout, f"{chart.relative_to(root)} (helm)", budget=budget)


def _run(argv: list[str], timeout: float, limits: InputLimits, copy: Path) -> proc.Completed:
    with proc.sandbox(readable=[copy]) as box:
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
        return proc.run(
            argv,
            cwd=str(home),
            timeout=timeout,
            env=env,
            max_output=limits.max_bytes,
            output_setting="MERGEWAY_MAX_RENDERED_BYTES",
            confine=box.confinement,
        )
