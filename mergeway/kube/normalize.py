"""Strip what the server owns, so a diff shows only what a person changed.

Both sides of every diff (the live object and the dry-run result) go through the same function;
otherwise every object would show churn in ``resourceVersion`` or ``managedFields``.
"""

from __future__ import annotations

from typing import Any

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
#: Mergeway's record of what it applied (see :func:`mergeway.kube.diff.config_hash`): bookkeeping, not content.
CONFIG_HASH = "mergeway.io/config-hash"
_METADATA_DROP = ("managedFields", "resourceVersion", "uid", "generation", "creationTimestamp", "selfLink")


def normalize(obj: dict[str, Any] | None) -> dict[str, Any] | None:
    if obj is None:
        return None
    out = dict(obj)  # shallow: only top-level keys, metadata and annotations change below
    out.pop("status", None)
    metadata = out.get("metadata")
    if isinstance(metadata, dict):
        metadata = out["metadata"] = dict(metadata)
        for key in _METADATA_DROP:
            metadata.pop(key, None)
        annotations = metadata.get("annotations")
        if isinstance(annotations, dict):
            annotations = metadata["annotations"] = dict(annotations)
            annotations.pop(LAST_APPLIED, None)
            annotations.pop(CONFIG_HASH, None)
            if not annotations:
                metadata.pop("annotations", None)
    return out
