"""GitHub ``merge_group`` deliveries → :class:`~mergeway.events.MergeGroup`.

A repository that requires a merge queue asks for its required checks on a temporary branch
(``gh-readonly-queue/<base>/pr-<n>-<sha>``) holding what the queue would merge. Two actions matter:
``checks_requested`` (preview that commit) and ``destroyed`` (stop working on it). Any other action,
including ones GitHub may add later, is :class:`~mergeway.intake.Ignored`, as are groups whose head
is not a full commit SHA (the job checks the commit out by it).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from mergeway.events import MergeGroup, Repository
from mergeway.intake import Ignored, Parsed
from mergeway.intake.fields import obj, opt_str, req_str

ACTIONS = frozenset({"checks_requested", "destroyed"})
#: ``destroyed`` reasons in GitHub's webhook schema; another one is kept as ``"unknown"``.
REASONS = frozenset({"merged", "invalidated", "dequeued"})
_SHA = re.compile(r"[0-9a-f]{40}")
_BRANCH = "refs/heads/"


def merge_group(
    delivery_id: str, payload: dict[str, Any], repository: Callable[[dict[str, Any]], Repository]
) -> Parsed:
    """Interpret one verified ``merge_group`` delivery; ``InvalidPayloadError`` when a needed field is missing.

    ``repository`` reads the delivery's repository (the GitHub parser's rule). GitHub's schema makes
    ``repository`` optional for this event; a group that names none has nothing to preview.
    """
    action = opt_str(payload, "action")
    if action not in ACTIONS:
        return Ignored(f"merge_group action {action[:64]!r} does not run a job")
    if not isinstance(payload.get("repository"), dict):
        return Ignored("merge_group delivery names no repository")
    repo = repository(payload)
    obj(payload, "merge_group")
    head_sha = req_str(payload, "merge_group", "head_sha").lower()
    base_sha = opt_str(payload, "merge_group", "base_sha").lower()
    if not _SHA.fullmatch(head_sha) or (base_sha and not _SHA.fullmatch(base_sha)):
        return Ignored("merge_group names no full commit SHA")
    reason = opt_str(payload, "reason") if action == "destroyed" else ""
    return MergeGroup(
        delivery_id=delivery_id,
        repo=repo,
        action=action,
        head_sha=head_sha,
        head_ref=_branch(req_str(payload, "merge_group", "head_ref")),
        base_sha=base_sha,
        base_ref=_branch(req_str(payload, "merge_group", "base_ref")),
        reason=(reason if reason in REASONS else "unknown") if action == "destroyed" else "",
    )


def _branch(ref: str) -> str:
    """``refs/heads/main`` → ``main`` (GitHub sends full refs here, unlike a pull request's ``base.ref``)."""
    return ref[len(_BRANCH) :] if ref.startswith(_BRANCH) else ref
