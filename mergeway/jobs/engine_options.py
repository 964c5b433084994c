"""The engine options of one environment: its ``ignore:`` rules and the autoscalers of its objects.

Preview, deploy and drift build their :class:`~mergeway.kube.options.ApplyOptions` here, the same
way, so a field the preview leaves out is one the deploy does not take back and the drift check
does not report.
"""

from __future__ import annotations

from collections.abc import Sequence

from mergeway.kube.autoscalers import Scaled, scaled, with_autoscalers
from mergeway.kube.client import KubeClient
from mergeway.kube.discovery import Discovery
from mergeway.kube.options import ApplyOptions, IgnoreRule
from mergeway.manifest import Manifest
from mergeway.repoconfig import Environment


def configured(env: Environment) -> ApplyOptions:
    """What ``.mergeway.yaml`` says for ``env``: managers to yield to and fields to leave alone."""
    rules = tuple(
        IgnoreRule(r.pointer, kind=r.kind, group=r.group, name=r.name, namespace=r.namespace) for r in env.ignore.fields
    )
    return ApplyOptions(respect_managers=frozenset(env.ignore.managers), ignore=rules)


def options_for(
    env: Environment, client: KubeClient, discovery: Discovery, manifests: Sequence[Manifest]
) -> tuple[ApplyOptions, list[Scaled]]:
    """``env``'s options with each HPA target's ``/spec/replicas`` left to its autoscaler, and those targets."""
    targets = scaled(client, discovery, manifests, env.namespace)
    return with_autoscalers(configured(env), targets), targets
