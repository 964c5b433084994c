"""Render a kustomization with ``kubectl kustomize`` (the same kustomize kubectl users run)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from mergeway import binaries, proc
from mergeway.render.manifests import Manifest, parse_manifests
from mergeway.render.paths import PathError

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
_PATH_FIELDS = (
    "resources",
    "bases",
    "components",
    "patchesStrategicMerge",
    "crds",
    "configurations",
    "transformers",
    "generators",
    "validators",
)


def kustomization_file(directory: Path) -> Path | None:
    for name in KUSTOMIZATION_FILES:
        if (directory / name).is_file():
            return directory / name
    return None


def _check_references(root: Path, directory: Path, seen: set[Path]) -> None:
    """Refuse kustomizations that reach outside the repository or onto the network.

    kustomize itself only restricts *files* to the kustomization root; bases and resources may
    still point at ``../../..`` or a remote URL, which would read the worker's disk or fetch code
    the PR does not contain. We walk the tree of kustomizations and confine every local reference.
    """
    directory = directory.resolve()
    if directory in seen:
        return
    seen.add(directory)
    file = kustomization_file(directory)
    if file is None:
        return
    try:
        data: Any = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise PathError(f"{file.relative_to(root)}: not valid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise PathError(f"{file.relative_to(root)}: not a kustomization")
    for field in _PATH_FIELDS:
        for ref in data.get(field) or []:
            if not isinstance(ref, str):
                continue
            if "://" in ref or ref.startswith(("git@", "github.com/", "gitlab.com/")):
                raise PathError(f"{file.relative_to(root)}: remote {field} {ref!r} is not allowed; vendor it")
            target = (directory / ref).resolve()
            top = root.resolve()
            if target != top and top not in target.parents:
                raise PathError(f"{file.relative_to(root)}: {field} {ref!r} leads outside the repository")
            if target.is_dir():
                _check_references(root, target, seen)


def render_kustomize(root: Path, directory: Path, *, timeout: float = 120.0) -> list[Manifest]:
    _check_references(root, directory, set())
    kubectl = binaries.find("kubectl")
    result = proc.run(
        [kubectl, "kustomize", str(directory)],
        cwd=str(directory),
        timeout=timeout,
        # No KUBECONFIG, no HOME: rendering never talks to a cluster.
        env=proc.clean_env({"HOME": str(directory)}),
    )
    return parse_manifests(result.stdout, f"{directory.relative_to(root)} (kustomize)")
