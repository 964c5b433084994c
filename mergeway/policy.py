"""The operator's policy: what each repository may deploy, where, and from which branch.

A repository's ``.mergeway.yaml`` asks; this policy decides. It lives with the operator (a file
named by ``MERGEWAY_POLICY_FILE``), never in the repository, so a pull request cannot grant itself
a production cluster, another team's namespace or cluster-wide RBAC.

Policy file format::

    rules:
      - repositories: ["github:acme/shop", "gitlab:acme/*"]   # forge:owner/name globs
        clusters: [staging, prod]                            # globs
        namespaces: ["shop", "shop-*"]                       # globs; "*" for any
        cluster_scoped_kinds: [Namespace]                    # Kind.group globs; default: none
        denied_kinds: ["Secret"]                             # Kind.group globs; default: none
        branches: ["release/*"]                              # besides the default branch

The first rule whose ``repositories`` match and whose ``clusters`` include the environment's
cluster decides. Every rendered object is checked against it *before* anything is sent to the
cluster (no dry run either): its namespace, after defaulting to the environment's namespace, must
match ``namespaces``; a cluster-scoped kind (as the cluster's API discovery says, or the scope a
CRD in the same change declares) must match ``cluster_scoped_kinds``, and a Namespace's own name
must match ``namespaces``; no kind may match ``denied_kinds``. Kinds are spelled as kubectl's
group-kinds: ``Namespace``, ``ClusterRole.rbac.authorization.k8s.io``. An environment's
``branch`` must be the repository's default branch or match ``branches``.

A top-level ``freeze:`` list holds the operator's freeze windows, per repository glob and cluster
(:mod:`mergeway.policy_freeze`; every matching entry applies, besides the repository's own).

Without a policy file the service refuses to start, unless the operator sets
``MERGEWAY_POLICY=allow-all`` (single-team installs, the local demo): then every repository may
deploy anything to every configured cluster, as it was before policies covered objects.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import yaml

from mergeway.freeze import FreezeError, FreezeWindow
from mergeway.manifest import Manifest, effective_namespace
from mergeway.policy_freeze import OperatorFreeze, parse_operator_freezes
from mergeway.repoconfig import Environment

#: (apiVersion, kind) → namespaced?, ``None`` for a kind the cluster does not serve: the cluster's
#: discovery, as :meth:`mergeway.kube.discovery.Discovery.scopes` hands it over.
Scopes = Mapping[tuple[str, str], "bool | None"]

#: The value of ``MERGEWAY_POLICY`` that lets every repository deploy anything anywhere.
ALLOW_ALL = "allow-all"
_RULE_KEYS = {"repositories", "clusters", "namespaces", "cluster_scoped_kinds", "denied_kinds", "branches"}
#: A refusal names at most this many objects (the count is always given).
_MAX_LISTED = 50


class PolicyError(ValueError):
    """The policy file is invalid (an operator error: the service refuses to start)."""


def _listing(patterns: Sequence[str]) -> str:
    return ", ".join(patterns) or "none"


@dataclass(frozen=True)
class Rule:
    repositories: tuple[str, ...]
    clusters: tuple[str, ...]
    namespaces: tuple[str, ...]
    cluster_scoped_kinds: tuple[str, ...] = ()
    denied_kinds: tuple[str, ...] = ()
    branches: tuple[str, ...] = ()
    #: Position in the file, so a refusal can say which rule decided.
    index: int = 0

    def describe(self) -> str:
        """The rule as the PR comment shows it: enough for an author to see why, and what to ask for."""
        parts = [
            f"namespaces: {_listing(self.namespaces)}",
            f"cluster_scoped_kinds: {_listing(self.cluster_scoped_kinds)}",
        ]
        if self.denied_kinds:
            parts.append(f"denied_kinds: {_listing(self.denied_kinds)}")
        return f"policy rules[{self.index}] ({'; '.join(parts)})"

    def allows_namespace(self, namespace: str) -> bool:
        return any(fnmatchcase(namespace, pat) for pat in self.namespaces)

    def allows_branch(self, branch: str) -> bool:
        return any(fnmatchcase(branch, pat) for pat in self.branches)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str = ""
    rule: Rule | None = None


@dataclass(frozen=True)
class PolicyObject:
    """A rendered object as the policy sees it: identity, namespace after defaulting, and scope."""

    group: str
    kind: str
    name: str
    #: After defaulting (``""`` for cluster-scoped objects).
    namespace: str
    #: ``None`` when the cluster serves no such kind and no CRD in the change declares it.
    cluster_scoped: bool | None
    source: str = ""

    @property
    def group_kind(self) -> str:
        return f"{self.kind}.{self.group}" if self.group else self.kind

    def __str__(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        source = f" ({self.source})" if self.source else ""
        return f"{self.group_kind}/{where}{self.name}{source}"


@dataclass(frozen=True)
class Policy:
    rules: tuple[Rule, ...] | None  # None: MERGEWAY_POLICY=allow-all
    #: The operator's freeze windows (:mod:`mergeway.policy_freeze`); read with :func:`windows_for`.
    freezes: tuple[OperatorFreeze, ...] = ()

    @classmethod
    def allow_all(cls) -> Policy:
        return cls(rules=None)

    @property
    def allows_everything(self) -> bool:
        return self.rules is None

    def rule_for(self, forge: str, repo: str, cluster: str) -> Decision:
        """The rule deciding for ``forge:repo`` on ``cluster``, or a refusal saying why there is none."""
        if self.rules is None:
            return Decision(True)
        ident = f"{forge}:{repo}"
        matching = [r for r in self.rules if any(fnmatchcase(ident, pat) for pat in r.repositories)]
        if not matching:
            return Decision(False, f"{repo} is not allowed to deploy anywhere by this server's policy")
        for rule in matching:
            if any(fnmatchcase(cluster, pat) for pat in rule.clusters):
                return Decision(True, rule=rule)
        allowed = sorted({c for r in matching for c in r.clusters})
        return Decision(False, f"{repo} may not deploy to cluster {cluster!r} (allowed: {_listing(allowed)})")

    def grants_namespace(self, namespace: str) -> str:
        """Which rule lets some repository write into ``namespace`` (``""``: none does).

        Asked at start-up for the namespace Mergeway runs in (``MERGEWAY_OWN_NAMESPACE``): a
        repository that may write there may rewrite Mergeway's policy, kubeconfig or worker. Any
        cluster counts: which cluster names reach the cluster Mergeway runs in is not known here.
        """
        if self.rules is None:
            return f"allow-all lets every repository deploy into namespace {namespace!r}"
        for rule in self.rules:
            if rule.allows_namespace(namespace):
                return (
                    f"rules[{rule.index}] (namespaces: {_listing(rule.namespaces)}) lets "
                    f"{_listing(rule.repositories)} deploy into namespace {namespace!r}"
                )
        return ""

    def check(
        self, forge: str, repo: str, env: Environment, known_clusters: set[str], *, default_branch: str = ""
    ) -> Decision:
        """May ``forge:repo`` deploy ``env`` at all? The reason is shown on the PR when not.

        ``default_branch`` is the repository's (from the forge): an environment deploying from it
        needs no ``branches`` entry. Objects are checked separately (:meth:`check_objects`).
        """
        if env.cluster not in known_clusters:
            known = ", ".join(sorted(known_clusters)) or "none"
            return Decision(
                False, f"cluster {env.cluster!r} is not configured on this Mergeway server (known clusters: {known})"
            )
        decision = self.rule_for(forge, repo, env.cluster)
        rule = decision.rule
        if rule is None:
            return decision
        if env.namespace and not rule.allows_namespace(env.namespace):
            return Decision(
                False, f"{repo} may not deploy to namespace {env.namespace!r} (allowed: {_listing(rule.namespaces)})"
            )
        if not env.namespace and "*" not in rule.namespaces:
            return Decision(
                False,
                f"environment {env.name!r} must set a namespace: {repo} may only deploy to {_listing(rule.namespaces)}",
            )
        if env.branch and env.branch != default_branch and not rule.allows_branch(env.branch):
            allowed = [b for b in (default_branch, *rule.branches) if b]
            return Decision(
                False,
                f"environment {env.name!r} deploys from branch {env.branch!r}, which the operator has not "
                f"allowed for {repo} on cluster {env.cluster!r} (allowed: {_listing(allowed)}; "
                "without a `branches` entry only the repository's default branch deploys)",
            )
        return decision

    def check_objects(self, forge: str, repo: str, env: Environment, objects: Iterable[PolicyObject]) -> list[str]:
        """One line per object ``forge:repo`` may not deploy in ``env`` (empty: all allowed)."""
        decision = self.rule_for(forge, repo, env.cluster)
        if self.rules is None:
            return []
        if decision.rule is None:
            return [decision.reason]
        return [f"{obj}: {why}" for obj, why in self.refusals(forge, repo, env, objects)]

    def refusals(
        self, forge: str, repo: str, env: Environment, objects: Iterable[PolicyObject]
    ) -> list[tuple[PolicyObject, str]]:
        """Each object the rule for ``forge:repo`` on ``env``'s cluster refuses, with why.

        The one object check, for what a change writes and for what it would prune alike: a
        deletion is as much a write as an apply, so an object the current rule no longer covers
        (its namespace or kind revoked since it was deployed) is not deleted either. Without a
        deciding rule every object is refused.
        """
        if self.rules is None:
            return []
        decision = self.rule_for(forge, repo, env.cluster)
        rule = decision.rule
        if rule is None:
            return [(obj, decision.reason) for obj in objects]
        return [(obj, why) for obj in objects if (why := _refusal(rule, obj))]

    def admit(self, forge: str, repo: str, env: Environment, manifests: Sequence[Manifest], scopes: Scopes) -> str:
        """Check every rendered object before anything is sent; the refusal for the PR, or ``""``.

        Called by preview and deploy between rendering and the first dry run, so an object outside
        the policy never reaches the API server, not even as a dry run (whose answer would tell a
        PR author whether a guessed Secret value in another namespace is right).
        """
        if self.rules is None:
            return ""
        violations = self.check_objects(forge, repo, env, objects_of(manifests, scopes, env.namespace))
        return self.refusal(forge, repo, env, violations) if violations else ""

    def refusal(self, forge: str, repo: str, env: Environment, violations: Sequence[str]) -> str:
        """The message for the PR: which objects, which rule, and that nothing reached the cluster."""
        rule = self.rule_for(forge, repo, env.cluster).rule
        lines = [f"- {v}" for v in violations[:_MAX_LISTED]]
        if len(violations) > _MAX_LISTED:
            lines.append(f"- … and {len(violations) - _MAX_LISTED} more")
        decided = f" by {rule.describe()}" if rule else ""
        return (
            f"{len(violations)} object(s) are outside what {forge}:{repo} may deploy on cluster "
            f"{env.cluster!r}{decided}:\n" + "\n".join(lines) + "\nNothing was sent to the cluster; "
            "ask the operator to extend the policy, or remove these objects."
        )


def _matches_kind(obj: PolicyObject, patterns: Sequence[str]) -> bool:
    return any(fnmatchcase(obj.group_kind, pat) for pat in patterns)


def _refusal(rule: Rule, obj: PolicyObject) -> str:
    """Why ``rule`` refuses ``obj`` ("" when it allows it)."""
    if obj.cluster_scoped is None:
        return "the cluster does not serve this kind, so its scope cannot be checked against the policy"
    if _matches_kind(obj, rule.denied_kinds):
        return f"kind {obj.group_kind} is denied (denied_kinds: {_listing(rule.denied_kinds)})"
    if obj.cluster_scoped:
        if not _matches_kind(obj, rule.cluster_scoped_kinds):
            return (
                f"{obj.group_kind} is cluster-scoped and not allowed "
                f"(cluster_scoped_kinds: {_listing(rule.cluster_scoped_kinds)})"
            )
        if obj.group == "" and obj.kind == "Namespace" and not rule.allows_namespace(obj.name):
            return f"namespace {obj.name!r} is not allowed (namespaces: {_listing(rule.namespaces)})"
        return ""
    if not rule.allows_namespace(obj.namespace):
        return f"namespace {obj.namespace!r} is not allowed (namespaces: {_listing(rule.namespaces)})"
    return ""


def _declared_scopes(manifests: Iterable[Manifest]) -> dict[tuple[str, str], bool]:
    """(group, kind) → cluster-scoped?, for the custom resources of CRDs in the change itself."""
    scopes = {}
    for m in manifests:
        if m.kind == "CustomResourceDefinition" and m.group == "apiextensions.k8s.io":
            spec = m.obj.get("spec") or {}
            names = spec.get("names") or {}
            scopes[(str(spec.get("group", "")), str(names.get("kind", "")))] = spec.get("scope") != "Namespaced"
    return scopes


def objects_of(manifests: Sequence[Manifest], scopes: Scopes, default_namespace: str) -> list[PolicyObject]:
    """What the policy checks for each manifest, with scope from the cluster's discovery (``scopes``).

    Namespaces are defaulted by the engine's own rule (:func:`mergeway.manifest.effective_namespace`).
    A kind the cluster does not serve takes the scope its CRD in the same change declares.
    """
    declared = _declared_scopes(manifests)
    out = []
    for m in manifests:
        namespaced = scopes.get((m.api_version, m.kind))
        scoped: bool | None = (not namespaced) if namespaced is not None else declared.get((m.group, m.kind))
        namespace = effective_namespace(m.namespace, default_namespace, namespaced=scoped is False)
        out.append(PolicyObject(m.group, m.kind, m.name, namespace, scoped, m.source))
    return out


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise PolicyError(f"{where} must be a list of strings")
    return tuple(value)


def _rule(raw: Any, index: int) -> Rule:
    where = f"rules[{index}]"
    if not isinstance(raw, dict):
        raise PolicyError(f"{where} must be a mapping")
    unknown = set(raw) - _RULE_KEYS
    if unknown:
        raise PolicyError(
            f"{where}: unknown key(s): {', '.join(sorted(map(str, unknown)))} (known: {', '.join(sorted(_RULE_KEYS))})"
        )
    if "repositories" not in raw:
        raise PolicyError(f"{where}.repositories is required")

    def optional(key: str, default: list[str]) -> tuple[str, ...]:
        value = raw.get(key)
        return tuple(default) if value in (None, []) else _strings(value, f"{where}.{key}")

    return Rule(
        repositories=_strings(raw.get("repositories"), f"{where}.repositories"),
        clusters=optional("clusters", []),
        namespaces=optional("namespaces", ["*"]),
        cluster_scoped_kinds=optional("cluster_scoped_kinds", []),
        denied_kinds=optional("denied_kinds", []),
        branches=optional("branches", []),
        index=index,
    )


def parse(text: str) -> Policy:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PolicyError(f"policy file is not valid YAML: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("rules"), list):
        raise PolicyError("policy file must be a mapping with a 'rules' list")
    unknown = set(data) - {"rules", "freeze"}
    if unknown:
        raise PolicyError(f"policy file: unknown top-level key(s): {', '.join(sorted(map(str, unknown)))}")
    try:
        freezes = parse_operator_freezes(data.get("freeze"))
    except FreezeError as exc:
        raise PolicyError(str(exc)) from None
    return Policy(rules=tuple(_rule(raw, i) for i, raw in enumerate(data["rules"])), freezes=freezes)


def windows_for(policy: Policy, repository: str, cluster: str) -> tuple[FreezeWindow, ...]:
    """The operator's freeze windows holding ``repository`` (``forge:owner/name``) on ``cluster``: all that match."""
    return tuple(f.window for f in policy.freezes if f.applies(repository, cluster))


def environment_windows(policy: Policy, repository: str, env: Environment) -> tuple[FreezeWindow, ...]:
    """Every freeze window holding ``env`` of ``repository``: the operator's first, then the repository's.

    The one place both sources are joined, for the preview's note and the deploy's gate alike.
    """
    return (*windows_for(policy, repository, env.cluster), *env.freeze)


def load(path: str) -> Policy:
    """The policy in ``path`` (``MERGEWAY_POLICY_FILE``); no path is allow-all.

    Whether allow-all is acceptable is not decided here: :class:`~mergeway.config.Settings` refuses
    to start a web service or worker without a policy file unless ``MERGEWAY_POLICY=allow-all``.
    """
    if not path:
        return Policy.allow_all()
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(f"policy file cannot be read: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise PolicyError(f"policy file is not UTF-8 text (byte {exc.start} cannot be decoded)") from None
    return parse(text)
