"""Render a directory of plain YAML/JSON manifests, as ``kubectl apply -R -f DIR`` reads it."""

from __future__ import annotations

from pathlib import Path

from mergeway.limits import Budget, read_text
from mergeway.render.manifests import Manifest, ManifestError, iter_objects, load_documents, looks_like_kubernetes

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
#: Files that sit beside manifests but are tool config, not cluster objects.
SKIPPED_NAMES = frozenset(
    {"kustomization.yaml", "kustomization.yml", "Kustomization", ".mergeway.yaml", "Chart.yaml", "values.yaml"}
)


def wanted(relative: str) -> bool:
    """Whether a file (by its path below the environment directory) is one :func:`render_plain` reads."""
    parts = relative.split("/")
    return (
        relative.endswith(MANIFEST_SUFFIXES)
        and parts[-1] not in SKIPPED_NAMES
        and not any(part.startswith(".") for part in parts)
    )


def render_plain(root: Path, directory: Path, warnings: list[str], budget: Budget) -> list[Manifest]:
    """Read every manifest file below ``directory`` in a stable (sorted) order.

    Documents that are not Kubernetes objects (CI config, Helm values, kustomize transformer
    config) are skipped with a warning rather than failing the render, since repositories keep
    such files next to manifests. The files' total size is bounded before any is read, and all
    of them draw on the render's one ``budget``.
    """
    limits = budget.limits
    files = sorted(p for p in directory.rglob("*") if p.is_file() and wanted(p.relative_to(directory).as_posix()))
    total = sum(p.stat().st_size for p in files)
    if total > limits.max_bytes:
        raise ManifestError(
            f"{directory.relative_to(root)}: refused: {total} bytes of manifests, more than "
            f"{limits.max_bytes} (MERGEWAY_MAX_RENDERED_BYTES)"
        )
    manifests: list[Manifest] = []
    for path in files:
        source = str(path.relative_to(root))
        try:
            text = read_text(path, source, limits)
        except UnicodeDecodeError:
            raise ManifestError(f"{source}: not UTF-8 text") from None
        docs = load_documents(text, source, budget=budget)
        kube_docs = [d for d in docs if looks_like_kubernetes(d)]
        if len(kube_docs) != len(docs):
            warnings.append(
                f"{source}: skipped {len(docs) - len(kube_docs)} document(s) that are not Kubernetes objects"
            )
        manifests.extend(iter_objects(kube_docs, source))
    return manifests
