"""Render a Helm chart with ``helm template``: client-side only, never against a cluster.

``helm template`` has no cluster credentials here (no KUBECONFIG, empty HOME), so a chart's
``lookup`` function returns nothing instead of reading live Secrets into a PR comment.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

from mergeway import binaries, proc
from mergeway.render.manifests import Manifest, parse_manifests
from mergeway.render.paths import confine

#: Used when the target cluster's version is not known (the local cluster's version).
DEFAULT_KUBE_VERSION = "v1.36.0"


def render_helm(
    root: Path,
    chart: Path,
    *,
    release: str,
    namespace: str,
    values: Sequence[str] = (),
    kube_version: str = "",
    timeout: float = 120.0,
) -> list[Manifest]:
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
        argv += ["--values", str(confine(root, value_file, what="helm values file"))]
    with tempfile.TemporaryDirectory(prefix="mergeway-helm-") as home:
        env = proc.clean_env(
            {
                "HOME": home,
                "HELM_CACHE_HOME": f"{home}/cache",
                "HELM_CONFIG_HOME": f"{home}/config",
                "HELM_DATA_HOME": f"{home}/data",
                "KUBECONFIG": "/dev/null",
            }
        )
        result = proc.run(argv, cwd=str(chart), timeout=timeout, env=env)
    return parse_manifests(result.stdout, f"{chart.relative_to(root)} (helm)")
