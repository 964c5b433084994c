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


def render_helm(
    root: Path,
    chart: Path,
    *,
    release: str,
    namespace: str,
    values: Sequence[str] = (),
    timeout: float = 120.0,
) -> list[Manifest]:
    helm = binaries.find("helm")
    argv = [helm, "template", release, str(chart), "--skip-tests", "--include-crds"]
    if namespace:
        argv += ["--namespace", namespace]
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
