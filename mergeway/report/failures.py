"""How a job that stopped on purpose, or on an expected failure, says why on the pull request.

The jobs decide *that* an environment stops (:class:`mergeway.jobs.environment.Refused`, a git or
cluster error); the sentences the pull request shows are written here, next to the rest of the
wording, so a refusal reads the same from the preview, the deploy and ``mergeway status``.
"""

from __future__ import annotations

from collections.abc import Sequence


def unreadable(error: object) -> str:
    """The repository could not be fetched, checked out or read at the commit."""
    return f"Could not read the repository: {error}"


def render_failed(path: str, error: object) -> str:
    return f"Rendering {path} failed:\n{error}"


def cluster_failed(cluster: str, verb: str, status: int, error: object) -> str:
    """The cluster's own answer; status 0 is the client's failure (no kubeconfig, no connection)."""
    what = "could not be reached" if status == 0 else f"refused the {verb}"
    return f"The cluster {cluster!r} {what}: {error}"


def policy_refused(reason: str) -> str:
    return f"Not allowed by this server's policy: {reason}"


def not_allowed(reason: str) -> str:
    return f"Not allowed: {reason}"


def lock_unavailable(key: str, wait: float) -> str:
    return f"{key} is held by another job (waited {wait:g}s)"


#: Why a rendered object may not be applied: it has the identity of an ApplySet parent.
PARENT_NAME = "named like a Mergeway ApplySet parent (ConfigMap `mergeway-<repository>.<environment>`)"


def parent_label(label: str) -> str:
    return f"carries the ApplySet parent label `{label}`"


def parent_annotations(keys: Sequence[str]) -> str:
    return f"carries ApplySet parent annotations ({', '.join(f'`{k}`' for k in keys)})"


def parent_impostors(found: Sequence[tuple[str, str, str]]) -> str:
    """The refusal for ``(object, source, why)`` of each rendered object with a parent's identity."""
    lines = [f"- {ref} ({source}): {why}" for ref, source, why in found]
    return (
        f"{len(found)} object(s) have the identity of an ApplySet parent, which records what Mergeway "
        "prunes and is written only by Mergeway:\n" + "\n".join(lines[:50]) + "\nNothing was sent to the "
        "cluster; rename these objects and remove ApplySet labels and annotations from them."
    )


def not_in_repository(applied: str, repository: str) -> str:
    return f"the environment is at {applied[:12]}, which is not in {repository}; refusing to deploy over it"


def history_rewritten(branch: str, applied: str, head: str) -> str:
    return (
        f"the history of {branch} was rewritten: the applied commit "
        f"{applied[:12]} is not an ancestor of {head[:12]}; refusing to deploy. "
        "Deploy by hand with `mergeway apply` once you have checked the branch."
    )


def environment_gone(name: str, head: str) -> str:
    return f"environment {name!r} is no longer in .mergeway.yaml at {head[:12]}"


def not_deployed_by_merge(name: str) -> str:
    return f"{name!r} is not deployed by this merge"
