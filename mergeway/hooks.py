"""Deploy hooks and sync waves: what the annotations of three dialects mean, in one table.

Teams arrive with hooks already written: Helm charts mark migration Jobs ``helm.sh/hook:
pre-upgrade``, Argo CD repositories mark them ``argocd.argoproj.io/hook: PreSync`` and order the rest
with ``argocd.argoproj.io/sync-wave``. Mergeway gives each spelling one meaning (:data:`TABLE`, shown
as is in README "Deploy hooks and sync waves", and a unit test keeps the two equal), so the engine
(:mod:`mergeway.kube.hooks`) knows only phases, weights, delete policies and waves.

A leaf: the engine, the reports and the README test read it. Named tuples, not dataclasses: the
engine's import path is the CLI's, whose start-up imports no dataclass (docs/DECISIONS.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, NamedTuple

Phase = Literal["pre-deploy", "sync", "post-deploy", "on-failure"]
#: Phases in the order a deploy reaches them (``on-failure`` only when it fails).
PHASES: tuple[Phase, ...] = ("pre-deploy", "sync", "post-deploy", "on-failure")
#: How each phase reads in a preview and a deploy comment.
PHASE_WORDS: dict[str, str] = {
    "pre-deploy": "runs before the rollout",
    "sync": "runs with the rollout",
    "post-deploy": "runs after the environment is healthy",
    "on-failure": "runs if the deploy fails",
}
DeletePolicy = Literal["before-hook-creation", "hook-succeeded", "hook-failed"]
#: Helm's and Argo CD's default: the previous run of a hook is deleted just before the next is created.
DEFAULT_DELETE_POLICY: DeletePolicy = "before-hook-creation"

MERGEWAY_HOOK = "mergeway.io/hook"
HELM_HOOK = "helm.sh/hook"
ARGO_HOOK = "argocd.argoproj.io/hook"
#: Which hook annotation speaks when an object carries several (Argo CD, too, prefers its own over Helm's).
HOOK_ANNOTATIONS = (MERGEWAY_HOOK, ARGO_HOOK, HELM_HOOK)
#: Hooks run in ascending weight; the first of these present is the weight.
WEIGHT_ANNOTATIONS = ("mergeway.io/hook-weight", "argocd.argoproj.io/sync-wave", "helm.sh/hook-weight")
DELETE_POLICY_ANNOTATIONS = (
    "mergeway.io/hook-delete-policy",
    "argocd.argoproj.io/hook-delete-policy",
    "helm.sh/hook-delete-policy",
)
#: Objects that are not hooks are applied wave by wave, lowest first.
WAVE_ANNOTATIONS = ("mergeway.io/sync-wave", "argocd.argoproj.io/sync-wave")

#: When a Helm install/upgrade hook runs: always, on the environment's first deploy, or on later ones.
When = Literal["always", "first", "upgrade"]


class Row(NamedTuple):
    """One (annotation, value) and what Mergeway does with it."""

    annotation: str
    value: str
    #: README's words.
    meaning: str
    #: The phase it runs in; ``None``: never applied on deploy (or refused, see :attr:`refused`).
    phase: Phase | None = None
    when: When = "always"
    #: A spelling Mergeway cannot honour: the preview fails and says why, nothing is applied.
    refused: bool = False


_FIRST = "on the environment's first deploy"
_LATER = "on every later deploy (the environment already has the release's objects)"
_NEVER = "never applied on deploy"

TABLE: tuple[Row, ...] = (
    Row(MERGEWAY_HOOK, "pre-deploy", "runs before the rollout and must complete first", "pre-deploy"),
    Row(MERGEWAY_HOOK, "post-deploy", "runs after the environment is healthy", "post-deploy"),
    Row(HELM_HOOK, "pre-install", f"pre-deploy, {_FIRST}", "pre-deploy", "first"),
    Row(HELM_HOOK, "pre-upgrade", f"pre-deploy, {_LATER}", "pre-deploy", "upgrade"),
    Row(HELM_HOOK, "post-install", f"post-deploy, {_FIRST}", "post-deploy", "first"),
    Row(HELM_HOOK, "post-upgrade", f"post-deploy, {_LATER}", "post-deploy", "upgrade"),
    Row(HELM_HOOK, "test", f"{_NEVER} (`helm test` material)"),
    Row(HELM_HOOK, "test-success", f"{_NEVER} (Helm 2's name for `test`)"),
    Row(HELM_HOOK, "test-failure", f"{_NEVER} (Helm 2)"),
    Row(HELM_HOOK, "pre-delete", f"{_NEVER} (Mergeway never uninstalls a release)"),
    Row(HELM_HOOK, "post-delete", f"{_NEVER} (Mergeway never uninstalls a release)"),
    Row(HELM_HOOK, "pre-rollback", f"{_NEVER} (`/rollback` is a revert merged and deployed like any other)"),
    Row(HELM_HOOK, "post-rollback", f"{_NEVER} (`/rollback` is a revert merged and deployed like any other)"),
    Row(ARGO_HOOK, "PreSync", "pre-deploy", "pre-deploy"),
    Row(ARGO_HOOK, "Sync", "created just before the normal apply; must complete before post-deploy hooks", "sync"),
    Row(ARGO_HOOK, "PostSync", "post-deploy", "post-deploy"),
    Row(ARGO_HOOK, "SyncFail", "runs when the deploy fails (a hook, the apply or the rollout)", "on-failure"),
    Row(ARGO_HOOK, "Skip", _NEVER),
    Row(ARGO_HOOK, "PostDelete", "refused: Mergeway never deletes an environment, so it would never run", refused=True),
    Row("mergeway.io/hook-weight", "<integer>", "order within a phase: lowest first, equal weights together"),
    Row("helm.sh/hook-weight", "<integer>", "the same"),
    Row("argocd.argoproj.io/sync-wave", "<integer>", "on a hook: its weight; on any other object: its wave"),
    Row("mergeway.io/sync-wave", "<integer>", "the object's wave: the apply goes wave by wave, each healthy first"),
    *(
        Row(a, v, m)
        for a in ("mergeway.io/hook-delete-policy", "helm.sh/hook-delete-policy")
        for v, m in (
            ("before-hook-creation", "delete the previous run just before creating the next (default)"),
            ("hook-succeeded", "delete it once it has succeeded"),
            ("hook-failed", "delete it once it has failed (its reason is kept on the PR)"),
        )
    ),
    Row("argocd.argoproj.io/hook-delete-policy", "BeforeHookCreation", "as `before-hook-creation` (default)"),
    Row("argocd.argoproj.io/hook-delete-policy", "HookSucceeded", "as `hook-succeeded`"),
    Row("argocd.argoproj.io/hook-delete-policy", "HookFailed", "as `hook-failed`"),
)

#: Every delete-policy spelling -> its meaning.
_POLICIES: dict[str, DeletePolicy] = {
    "before-hook-creation": "before-hook-creation",
    "hook-succeeded": "hook-succeeded",
    "hook-failed": "hook-failed",
    "BeforeHookCreation": "before-hook-creation",
    "HookSucceeded": "hook-succeeded",
    "HookFailed": "hook-failed",
}

#: Kinds a hook may be: those that complete (waited for until they do) and those that are done once
#: stored (what a migration Job needs beside it: its ServiceAccount, Role, ConfigMap, Secret).
COMPLETING = {("batch", "Job"), ("", "Pod")}
STORED = {
    ("", "ConfigMap"),
    ("", "Secret"),
    ("", "ServiceAccount"),
    ("rbac.authorization.k8s.io", "Role"),
    ("rbac.authorization.k8s.io", "RoleBinding"),
}


class Normal(NamedTuple):
    """Not a hook: applied with the environment, in ``wave``."""

    wave: int = 0


class Hook(NamedTuple):
    """A hook for this deploy: the phases it runs in, its weight, what deletes it, and how it was asked."""

    phases: tuple[Phase, ...]
    weight: int
    policies: frozenset[DeletePolicy]
    #: ``annotation: value`` as written, for the reviewer.
    said: str


class Skipped(NamedTuple):
    """A hook that this deploy does not apply (a test, a delete hook, an install-only hook on an upgrade)."""

    said: str
    why: str


class Refused(NamedTuple):
    """An annotation Mergeway cannot honour: the object's preview fails with ``why`` and nothing is applied."""

    why: str


Classified = Normal | Hook | Skipped | Refused


def _annotations(obj: Mapping[str, Any]) -> dict[str, str]:
    found = (obj.get("metadata") or {}).get("annotations") or {}
    return {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else {}


def _integer(annotations: Mapping[str, str], names: tuple[str, ...]) -> tuple[int, str]:
    """The first of ``names`` present, as an integer (0 when none); ``(0, why)`` when not an integer."""
    for name in names:
        if name in annotations:
            text = annotations[name].strip()
            try:
                return int(text), ""
            except ValueError:
                return 0, f"{name}: {annotations[name]!r} is not an integer"
    return 0, ""


def _rows(annotation: str) -> dict[str, Row]:
    return {r.value: r for r in TABLE if r.annotation == annotation}


def _policies(annotations: Mapping[str, str]) -> tuple[frozenset[DeletePolicy], str]:
    for name in DELETE_POLICY_ANNOTATIONS:
        if name in annotations:
            words = [w.strip() for w in annotations[name].split(",") if w.strip()]
            unknown = [w for w in words if w not in _POLICIES]
            if unknown:
                return frozenset(), f"{name}: unknown delete policy {', '.join(map(repr, unknown))}"
            return frozenset(_POLICIES[w] for w in words) or frozenset({DEFAULT_DELETE_POLICY}), ""
    return frozenset({DEFAULT_DELETE_POLICY}), ""


def classify(group: str, kind: str, obj: Mapping[str, Any], *, installed: bool) -> Classified:
    """What one rendered object is for a deploy; ``installed``: the environment already has objects
    (Helm's install and upgrade hooks are told apart by it)."""
    annotations = _annotations(obj)
    spoken = next((name for name in HOOK_ANNOTATIONS if name in annotations), "")
    if not spoken:
        wave, bad = _integer(annotations, WAVE_ANNOTATIONS)
        return Refused(bad) if bad else Normal(wave)
    value = annotations[spoken]
    said = f"{spoken}: {value}"
    rows = _rows(spoken)
    words = [w.strip() for w in value.split(",") if w.strip()]
    unknown = [w for w in words if w not in rows]
    if unknown or not words:
        known = ", ".join(f"`{v}`" for v in rows)
        return Refused(f"{spoken}: unknown hook {', '.join(map(repr, unknown)) or repr(value)} (known: {known})")
    refused = [rows[w] for w in words if rows[w].refused]
    if refused:
        return Refused(f"{spoken}: {refused[0].value} is not supported: {refused[0].meaning}")
    chosen = [rows[w] for w in words if rows[w].phase is not None]
    due = [r for r in chosen if r.when == "always" or (r.when == "upgrade") == installed]
    if not chosen:
        return Skipped(said, rows[words[0]].meaning)
    if not due:
        return Skipped(
            said,
            "Helm runs it only on an install; this environment already has the release's objects"
            if installed
            else "Helm runs it only on an upgrade; this is the environment's first deploy",
        )
    if (group, kind) not in COMPLETING | STORED:
        return Refused(
            f"{said} on a {kind}: a hook must be able to complete (a Job or a Pod) or be done once stored "
            "(a ConfigMap, Secret, ServiceAccount, Role or RoleBinding beside one); "
            f"a {kind} would never be waited for to an end"
        )
    weight, bad = _integer(annotations, WEIGHT_ANNOTATIONS)
    policies, bad_policy = _policies(annotations)
    if bad or bad_policy:
        return Refused(bad or bad_policy)
    phases = tuple(p for p in PHASES if any(r.phase == p for r in due))
    return Hook(phases, weight, policies, said)


def wave_of(obj: Mapping[str, Any]) -> int:
    """The wave of an object that is not a hook (0 without one, or when not an integer: refused at plan time)."""
    return _integer(_annotations(obj), WAVE_ANNOTATIONS)[0]
