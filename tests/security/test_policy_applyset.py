"""ApplySets are per exact repository: colliding names never share, adopt or prune each other's objects.

Issue 9, finding 10: ``acme/shop-api``, ``acme/shop.api`` and ``acme-shop/api`` used to map to one
ApplySet parent (``mergeway-github-acme-shop-api.<env>``), so one repository's preview listed the
others' objects as prunable and its deploy could prune them. Through the real chain: each gets its
own set, a parent recording another owner is refused, and a set named the old way is migrated
without pruning anything that might belong to someone else.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from kubernetes import client as k8s

from mergeway.jobs.applysets import applyset_for, legacy_applyset_for
from mergeway.kube.applyset import ENVIRONMENT_ANNOTATION, PART_OF_LABEL, REPOSITORY_ANNOTATION, ApplySet
from mergeway.repoconfig import Environment
from tests.fixtures.e2e import Stack

pytestmark = pytest.mark.cluster
PREVIEW, DEPLOY = "mergeway/preview/staging", "mergeway/deploy/staging"
COLLIDING = ("acme/shop-api", "acme/shop.api", "acme-shop/api")


def configmap(name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": labels or {}}, "data": {}}


def merged(stack: Stack, repo: Any, pr: Any) -> str:
    stack.sim.merge(repo, pr)
    sha = stack.sim.pr(repo, pr.number).merge_commit_sha
    assert sha
    return sha


def applyset_of(stack: Stack, repo: Any) -> ApplySet:
    return applyset_for(stack.sim.repository(repo), Environment("staging", "deploy", "local", stack.namespace))


def configmaps(stack: Stack) -> dict[str, Any]:
    core = k8s.CoreV1Api(stack.cluster.api_client())
    return {c.metadata.name: c for c in core.list_namespaced_config_map(stack.namespace).items}


def test_colliding_repository_names_never_prune_each_others_objects(stack: Stack) -> None:
    repos = [stack.repo(name=name) for name in COLLIDING]
    for i, repo in enumerate(repos):
        pr = stack.sim.open_pr(repo, "add", files={"deploy/cm.yaml": yaml.safe_dump(configmap(f"cm-{i}"))})
        preview = stack.status(repo, pr.head_sha, PREVIEW)
        # Not "1 to prune": the other repositories' objects are not this repository's to prune.
        assert preview.description.startswith("1 to add, 0 to change, 0 to prune"), preview.description
        deployed = stack.status(repo, merged(stack, repo, pr), DEPLOY)
        assert deployed.state == "success", deployed.description

    live = configmaps(stack)
    assert {"cm-0", "cm-1", "cm-2"} <= set(live)
    sets = [applyset_of(stack, repo) for repo in repos]
    assert len({s.name for s in sets}) == 3 and len({s.id for s in sets}) == 3
    for i, (name, applyset) in enumerate(zip(COLLIDING, sets, strict=True)):
        annotations = live[applyset.name].metadata.annotations
        assert annotations[REPOSITORY_ANNOTATION] == f"github:{name}"
        assert annotations[ENVIRONMENT_ANNOTATION] == "staging"
        assert live[f"cm-{i}"].metadata.labels[PART_OF_LABEL] == applyset.id

    pr = stack.sim.open_pr(repos[0], "drop", files={"deploy/cm.yaml": None})
    assert stack.status(repos[0], pr.head_sha, PREVIEW).description.startswith("0 to add, 0 to change, 1 to prune")
    deployed = stack.status(repos[0], merged(stack, repos[0], pr), DEPLOY)
    assert deployed.state == "success" and "1 pruned" in deployed.description
    left = configmaps(stack)
    assert "cm-0" not in left and {"cm-1", "cm-2"} <= set(left)


def test_a_parent_recording_another_repository_is_never_adopted(stack: Stack) -> None:
    repo = stack.repo(name="acme/shop-api")
    applyset = applyset_of(stack, repo)
    evil = ApplySet(applyset.name, applyset.namespace, "github:evil/shop-api", "staging")
    squatter = evil.manifest(evil.parent())
    k8s.CoreV1Api(stack.cluster.api_client()).create_namespaced_config_map(stack.namespace, squatter)

    pr = stack.sim.open_pr(repo, "add", files={"deploy/cm.yaml": yaml.safe_dump(configmap("mine"))})
    preview = stack.status(repo, pr.head_sha, PREVIEW)
    assert preview.state == "failure"
    body = stack.only_comment(repo, pr.number, "<!-- mergeway:preview:staging -->").body
    assert f"ConfigMap {stack.namespace}/{applyset.name} belongs to github:evil/shop-api" in body
    assert "refusing to prune or adopt another repository's objects" in body


def test_a_set_named_the_old_way_is_migrated_without_pruning_what_may_be_someone_elses(stack: Stack) -> None:
    repo = stack.repo({"deploy/kept.yaml": yaml.safe_dump(configmap("kept"))})
    env = Environment("staging", "deploy", "local", stack.namespace)
    legacy = legacy_applyset_for(stack.sim.repository(repo), env)
    new = applyset_of(stack, repo)
    assert legacy.name != new.name
    # What an earlier version left: its parent (with the commit it applied) and two members, one of
    # which is no longer in Git -- or belongs to another repository whose name collides.
    core = k8s.CoreV1Api(stack.cluster.api_client())
    old_parent = legacy.manifest(legacy.parent(["ConfigMap"], commit=stack.sim.head(repo)))
    core.create_namespaced_config_map(stack.namespace, old_parent)
    for name in ("kept", "orphan"):
        core.create_namespaced_config_map(stack.namespace, configmap(name, {PART_OF_LABEL: legacy.id}))

    pr = stack.sim.open_pr(repo, "touch", files={"README.md": "touched\n"})
    preview = stack.status(repo, pr.head_sha, PREVIEW)
    assert preview.state == "success" and "0 to prune" in preview.description
    assert (
        f"deployed under the ApplySet `{legacy.name}`"
        in stack.only_comment(repo, pr.number, "<!-- mergeway:preview:staging -->").body
    )
    deployed = stack.status(repo, merged(stack, repo, pr), DEPLOY)
    assert deployed.state == "success", deployed.description

    live = configmaps(stack)
    assert live["kept"].metadata.labels[PART_OF_LABEL] == new.id  # moved into the new set
    assert live["orphan"].metadata.labels[PART_OF_LABEL] == legacy.id  # left alone, not pruned
    assert legacy.name in live and live[new.name].metadata.annotations[REPOSITORY_ANNOTATION] == "github:acme/shop"
    body = stack.only_comment(repo, pr.number, "<!-- mergeway:deploy:staging -->").body
    assert "`ConfigMap/orphan`" in body and "were not pruned" in body

    # Once nothing is left in the old set, the next deploy removes its parent.
    core.delete_namespaced_config_map("orphan", stack.namespace)
    second = stack.sim.open_pr(repo, "touch-again", files={"README.md": "again\n"})
    assert stack.status(repo, merged(stack, repo, second), DEPLOY).state == "success"
    assert legacy.name not in configmaps(stack) and "kept" in configmaps(stack)
