"""One rendered Kubernetes object, the file it came from and the namespace it lands in: shared by every layer.

A leaf module (it imports nothing of Mergeway) so that the renderers, which produce manifests, and
the engine (:mod:`mergeway.kube`), which applies them, both depend on it and not on each other.
"""

from __future__ import annotations

from typing import Any, NamedTuple

#: Where a namespaced object without a namespace goes when the environment names none either.
DEFAULT_NAMESPACE = "default"


class Manifest(NamedTuple):
    """One object from a rendered environment, with where it came from for error messages."""

    obj: dict[str, Any]
    source: str

    @property
    def api_version(self) -> str:
        return str(self.obj.get("apiVersion", ""))

    @property
    def kind(self) -> str:
        return str(self.obj.get("kind", ""))

    @property
    def name(self) -> str:
        return str((self.obj.get("metadata") or {}).get("name", ""))

    @property
    def namespace(self) -> str:
        return str((self.obj.get("metadata") or {}).get("namespace") or "")

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0] if "/" in self.api_version else ""


def effective_namespace(own: str, default_namespace: str, *, namespaced: bool | None = True) -> str:
    """The namespace an object lands in: its own, else the environment's, else ``default`` (``kubectl apply -n``).

    ``""`` for a cluster-scoped kind (and for one whose scope is unknown, ``namespaced=None``). The
    one copy of the rule: the engine's desired object, pruning, the policy's check and the ApplySet
    parent's namespace all follow it, so they never disagree about where an object is.
    """
    if not namespaced:
        return ""
    return own or default_namespace or DEFAULT_NAMESPACE
