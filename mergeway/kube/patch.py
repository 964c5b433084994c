"""The one server-side apply request: Mergeway's field manager, taking ownership unless told not to.

Dry runs (:mod:`mergeway.kube.diff`), the apply itself (:mod:`mergeway.kube.apply`) and the
ApplySet parent (:mod:`mergeway.kube.applyset`) all send it, so what a preview dry-runs is exactly
what a deploy applies.
"""

from __future__ import annotations

from typing import Any

from mergeway.kube.client import APPLY_PATCH, KubeClient


def server_side_apply(
    client: KubeClient,
    path: str,
    obj: dict[str, Any],
    *,
    field_manager: str,
    force: bool = True,
    dry_run: bool = False,
) -> dict[str, Any]:
    """Apply ``obj`` at ``path`` (or only dry-run it) and return what the API server stores (or would).

    ``force`` takes fields another manager owns (a conflict otherwise: HTTP 409, which the caller
    reports); :class:`mergeway.kube.options.ApplyOptions` decides it for members of a set.
    """
    query = {"fieldManager": field_manager}
    if force:
        query["force"] = "true"
    if dry_run:
        query["dryRun"] = "All"
    result = client.request("PATCH", path, body=obj, query=query, content_type=APPLY_PATCH)
    return result if isinstance(result, dict) else {}
