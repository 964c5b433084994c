"""Strip what the server owns, so a diff shows only what a person changed.

Both sides of every diff (the live object and the dry-run result) go through the same function;
otherwise every object would show churn in ``resourceVersion`` or ``managedFields``.
"""

from __future__ import annotations

import copy
from typing import Any

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
_METADATA_DROP = ("managedFields", "resourceVersion", "uid", "generation", "creationTimestamp", "selfLink")


def normalize(obj: dict[str, Any] | None) -> dict[str, Any] | None:
    if obj is None:
        return None
    out = copy.deepcopy(obj)
    out.pop("status", None)
    metadata = out.get("metadata")
    if isinstance(metadata, dict):
        for key in _METADATA_DROP:
            metadata.pop(key, None)
        annotations = metadata.get("annotations")
        if isinstance(annotations, dict):
            annotations.pop(LAST_APPLIED, None)
            if not annotations:
                metadata.pop("annotations", None)
    return out
