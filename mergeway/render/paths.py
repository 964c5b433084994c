"""Keep every path a repository names inside that repository.

Repository config is written by whoever opens a pull request. A path like ``../../etc`` or a
symlink pointing out of the checkout would let a PR read files from the worker's disk into a
rendered manifest (and so into a PR comment), so each path is resolved and checked before use.
Whole directories are copied, symlinks resolved and confined, by :mod:`mergeway.render.stage`.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath


class PathError(ValueError):
    """A path escapes the repository or does not exist."""


def confine(root: Path, relative: str, *, what: str = "path") -> Path:
    """Resolve ``relative`` under ``root`` and refuse anything that ends up outside it."""
    if not relative or relative.strip() != relative:
        raise PathError(f"{what} must be a non-empty relative path")
    pure = PurePosixPath(relative)
    if pure.is_absolute() or ".." in pure.parts or "\\" in relative:
        raise PathError(f"{what} {relative!r} must be relative to the repository root, without '..'")
    root = root.resolve()
    target = (root / pure).resolve()
    if target != root and root not in target.parents:
        raise PathError(f"{what} {relative!r} leads outside the repository (through a symlink)")
    return target


KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")


def kustomization_file(directory: Path) -> Path | None:
    """The kustomization of ``directory``, if it has one (it is then rendered with kustomize)."""
    for name in KUSTOMIZATION_FILES:
        if (directory / name).is_file():
            return directory / name
    return None
