"""Render an environment's manifests from a checkout: plain YAML, kustomize, or a Helm chart.

The renderer is chosen by what the directory holds (a ``kustomization.yaml`` → kustomize, a
``Chart.yaml`` → Helm, anything else → plain YAML), the way users already lay repositories out for
kubectl, Flux and Argo CD, so no extra configuration is needed for the common cases.

Every renderer reads a private copy of the files it needs, with every symlink resolved and confined
to the repository (:mod:`mergeway.render.stage`), and every file it reads and every tool's output
draw on one :class:`~mergeway.limits.Budget` for the whole environment.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from mergeway.binaries import MissingTool
from mergeway.limits import DEFAULT_LIMITS, Budget, InputLimits, LimitError, read_text
from mergeway.render.manifests import Manifest, ManifestError, parse_manifests
from mergeway.render.paths import PathError, confine, kustomization_file
from mergeway.render.plain import render_plain, wanted
from mergeway.render.stage import walk

__all__ = ["Manifest", "RenderError", "Rendered", "render"]


class RenderError(Exception):
    """Rendering failed; the message is meant for the PR comment (the tool's own words)."""


class Rendered(NamedTuple):
    """An environment's objects, which renderer made them, and what the reviewer should be told."""

    renderer: str
    manifests: list[Manifest]
    warnings: list[str]


def _identity(m: Manifest) -> tuple[str, str, str, str]:
    return (m.group, m.kind, m.namespace, m.name)


def _dedupe(manifests: list[Manifest], warnings: list[str]) -> list[Manifest]:
    """Keep one object per identity, as applying the files in order would leave the last one.

    Identical repeats are common (an all-in-one file beside split files) and dropped silently;
    repeats that differ are flagged, because only the last one would take effect.
    """
    by_id: dict[tuple[str, str, str, str], Manifest] = {}
    for m in manifests:
        key = _identity(m)
        previous = by_id.get(key)
        if previous is not None and json.dumps(previous.obj, sort_keys=True) != json.dumps(m.obj, sort_keys=True):
            warnings.append(
                f"{m.kind} {m.name} is defined more than once with different content "
                f"({previous.source}, {m.source}); the last one ({m.source}) is used"
            )
        by_id.pop(key, None)
        by_id[key] = m
    return list(by_id.values())


def render(
    root: Path,
    path: str,
    *,
    namespace: str = "",
    release: str = "",
    values: Sequence[str] = (),
    kube_version: str = "",
    missing_ok: bool = False,
    limits: InputLimits = DEFAULT_LIMITS,
) -> Rendered:
    """Render ``path`` (relative to the checkout ``root``) into objects; raise :class:`RenderError`.

    The repository is untrusted input: ``limits`` bounds its size (one budget for everything this
    render reads), and the renderers refuse anything that would reach outside it (see
    :mod:`mergeway.render.stage`, :mod:`mergeway.render.kustomize` and ``helm``).
    """
    warnings: list[str] = []
    budget = Budget(limits)
    root = root.resolve()  # paths are compared after resolving, so the root must be resolved too
    try:
        directory = confine(root, path, what="environment path")
        if not directory.exists():
            if missing_ok:
                # Git keeps no empty directories: deleting every manifest of an environment (or
                # reverting the PR that added them) removes the path. That is an empty environment,
                # whose preview then shows every deployed object as pruned before anyone merges.
                note = (
                    f"{path} does not exist in this commit: the environment is empty, so everything "
                    "Mergeway deployed for it would be pruned"
                )
                return Rendered("none", [], [note])
            raise RenderError(f"environment path {path!r} does not exist in this commit")
        if directory.is_file():
            renderer, manifests = "plain", _render_file(directory, path, budget)
            return Rendered(renderer, _dedupe(_bounded(manifests, path, limits), warnings), warnings)
        tool = "kustomize" if kustomization_file(directory) else "helm" if (directory / "Chart.yaml").is_file() else ""
        if tool:
            manifests = _render_with_tool(tool, root, directory, release, namespace, values, kube_version, budget)
            renderer = tool
        else:
            prefix = len(str(directory.relative_to(root))) + 1 if directory != root else 0
            files = walk(root, [directory], limits, keep=lambda shown: wanted(shown[prefix:]))
            renderer, manifests = "plain", render_plain(files, warnings, budget)
        manifests = _bounded(manifests, path, limits)
    except (PathError, ManifestError, LimitError) as exc:
        raise RenderError(str(exc)) from None
    except MissingTool as exc:
        raise RenderError(str(exc)) from None
    return Rendered(renderer, _dedupe(manifests, warnings), warnings)


def _render_with_tool(
    tool: str,
    root: Path,
    directory: Path,
    release: str,
    namespace: str,
    values: Sequence[str],
    kube_version: str,
    budget: Budget,
) -> list[Manifest]:
    """kustomize or Helm. Imported here: plain YAML, the common small case, starts no process."""
    from mergeway.proc import ToolError
    from mergeway.render.helm import render_helm
    from mergeway.render.kustomize import render_kustomize

    try:
        if tool == "kustomize":
            return render_kustomize(root, directory, budget=budget)
        return render_helm(
            root,
            directory,
            release=release or directory.name,
            namespace=namespace,
            values=values,
            kube_version=kube_version,
            budget=budget,
        )
    except ToolError as exc:
        raise RenderError(f"{exc.tool} failed: {exc.message}") from None


def _render_file(file: Path, path: str, budget: Budget) -> list[Manifest]:
    """One file named as the environment: :func:`confine` resolved it, and only it is read."""
    try:
        text = read_text(file, path, budget.limits)
    except LimitError as exc:
        raise ManifestError(str(exc)) from None
    except UnicodeDecodeError:
        raise ManifestError(f"{path}: not UTF-8 text") from None
    return parse_manifests(text, path, budget=budget)


def _bounded(manifests: list[Manifest], path: str, limits: InputLimits) -> list[Manifest]:
    """Refuse an environment with more objects than the operator allows (each is planned and diffed)."""
    if len(manifests) > limits.max_objects:
        raise ManifestError(
            f"{path}: refused: {len(manifests)} objects, more than {limits.max_objects} (MERGEWAY_MAX_OBJECTS)"
        )
    return manifests
