"""The operator's policy: which repositories may deploy to which clusters and namespaces.

A repository's ``.mergeway.yaml`` asks; this policy decides. It lives with the operator (a file
named by ``MERGEWAY_POLICY_FILE``), never in the repository, so a pull request cannot grant itself
a production cluster or another team's namespace.

Policy file format::

    rules:
      - repositories: ["github:acme/shop", "gitlab:acme/*"]   # forge:full_name globs
        clusters: [staging, prod]
        namespaces: ["shop", "shop-*"]                       # globs; "*" for any

The first rule whose ``repositories`` match decides. Without a policy file every repository may use
every cluster the server knows and any namespace: that suits a single-team install and the local
demo; a shared install should always set one.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import yaml

from mergeway.repoconfig import Environment


class PolicyError(ValueError):
    """The policy file is invalid (an operator error: the service refuses to start)."""


@dataclass(frozen=True)
class Rule:
    repositories: tuple[str, ...]
    clusters: tuple[str, ...]
    namespaces: tuple[str, ...]


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str = ""


@dataclass(frozen=True)
class Policy:
    rules: tuple[Rule, ...] | None  # None: no policy file, allow everything known

    def check(self, forge: str, repo: str, env: Environment, known_clusters: set[str]) -> Decision:
        """May ``forge:repo`` deploy ``env``? The reason is shown on the PR when not."""
        if env.cluster not in known_clusters:
            known = ", ".join(sorted(known_clusters)) or "none"
            return Decision(
                False, f"cluster {env.cluster!r} is not configured on this Mergeway server (known clusters: {known})"
            )
        if self.rules is None:
            return Decision(True)
        ident = f"{forge}:{repo}"
        for rule in self.rules:
            if not any(fnmatchcase(ident, pat) for pat in rule.repositories):
                continue
            if env.cluster not in rule.clusters:
                return Decision(
                    False,
                    f"{repo} may not deploy to cluster {env.cluster!r} (allowed: {', '.join(rule.clusters) or 'none'})",
                )
            if env.namespace and not any(fnmatchcase(env.namespace, pat) for pat in rule.namespaces):
                return Decision(
                    False,
                    f"{repo} may not deploy to namespace {env.namespace!r} "
                    f"(allowed: {', '.join(rule.namespaces) or 'none'})",
                )
            if not env.namespace and "*" not in rule.namespaces:
                return Decision(
                    False,
                    f"environment {env.name!r} must set a namespace: {repo} may only "
                    f"deploy to {', '.join(rule.namespaces)}",
                )
            return Decision(True)
        return Decision(False, f"{repo} is not allowed to deploy anywhere by this server's policy")


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise PolicyError(f"{where} must be a list of strings")
    return tuple(value)


def parse(text: str) -> Policy:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PolicyError(f"policy file is not valid YAML: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("rules"), list):
        raise PolicyError("policy file must be a mapping with a 'rules' list")
    rules = []
    for i, raw in enumerate(data["rules"]):
        if not isinstance(raw, dict):
            raise PolicyError(f"rules[{i}] must be a mapping")
        rules.append(
            Rule(
                repositories=_strings(raw.get("repositories"), f"rules[{i}].repositories"),
                clusters=_strings(raw.get("clusters", []), f"rules[{i}].clusters") if raw.get("clusters") else (),
                namespaces=_strings(raw.get("namespaces", ["*"]), f"rules[{i}].namespaces"),
            )
        )
    return Policy(rules=tuple(rules))


def load(path: str) -> Policy:
    """Load the policy named by ``MERGEWAY_POLICY_FILE``; no path means allow-all."""
    if not path:
        return Policy(rules=None)
    try:
        return parse(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise PolicyError(f"MERGEWAY_POLICY_FILE cannot be read: {exc.strerror}") from None
