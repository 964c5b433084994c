"""Render a directory of plain YAML/JSON manifests, as ``kubectl apply -R -f DIR`` reads it.

Unlike kubectl, symlinked directories inside the repository are read too (as Helm and kustomize
read them); what leads outside the repository is refused before anything is read.
"""

from __future__ import annotations

from mergeway.limits import Budget, read_text
from mergeway.render.manifests import Manifest, ManifestError, iter_objects, load_documents, looks_like_kubernetes
from mergeway.render.stage import Input

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


def render_plain(files: list[Input], warnings: list[str], budget: Budget) -> list[Manifest]:
    """Read every manifest file of an environment, in a stable (sorted) order.

    ``files`` come from :func:`mergeway.render.stage.walk` (symlinks resolved and confined, the
    total size bounded before any is read). Documents that are not Kubernetes objects (CI config,
    Helm values, kustomize transformer config) are skipped with a warning rather than failing the
    render, since repositories keep such files next to manifests. All of them draw on the render's
    one ``budget``.
    """
    manifests: list[Manifest] = []
    for item in files:
        source = item.shown
        try:
            text = read_text(item.real, source, budget.limits)
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
