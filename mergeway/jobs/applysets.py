"""Which ApplySet holds a repository's environment.

A set belongs to exactly one repository and environment. Its parent's name carries a readable slug
and a hash of the exact ``forge:owner/name`` (``mergeway-github-acme-shop-api-<16 hex>.staging``),
so ``acme/shop-api``, ``acme/shop.api`` and ``acme-shop/api`` get three sets, and the set records
that identity on its parent, where every read verifies it (:meth:`mergeway.kube.applyset.ApplySet.read`).
Parents named the old way (``mergeway-<slug>.<env>``, shared by colliding names) are found by
:func:`legacy_applyset_for` and retired as described in docs/DECISIONS.md ("Policy"). The engine
(:mod:`mergeway.kube`) knows none of this: it is given a set.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

from mergeway.events import Repository
from mergeway.kube.applyset import (
    ENVIRONMENT_ANNOTATION,
    GROUP_KINDS,
    ID_LABEL,
    NAMESPACES,
    REPOSITORY_ANNOTATION,
    TOOLING,
    ApplySet,
)
from mergeway.manifest import Manifest, effective_namespace
from mergeway.repoconfig import Environment
from mergeway.report import failures as texts

#: Hex digits of sha256(forge:owner/name) in a parent's name: 64 bits, no feasible second preimage.
_DIGEST_CHARS = 16
_SLUG_CHARS = 100
#: Every Mergeway parent's name: ``mergeway-<slug>[-<digest>].<environment>`` (both schemes, and the
#: CLI's ``mergeway-cli.<directory>``).
_PARENT_NAME = re.compile(r"mergeway-[a-z0-9-]+\..+")
#: What marks any ApplySet parent (kubectl's or ours): its id label and the annotations it records.
_PARENT_ANNOTATIONS = (GROUP_KINDS, NAMESPACES, TOOLING, REPOSITORY_ANNOTATION, ENVIRONMENT_ANNOTATION)


def owner_identity(repo: Repository) -> str:
    """``forge:owner/name``: what a set's parent records, and what its name is derived from."""
    return f"{repo.forge}:{repo.full_name}"


def applyset_for(repo: Repository, env: Environment) -> ApplySet:
    """The set of one repository's environment, named collision-free from its exact identity.

    Forges treat owner and repository names case-insensitively (two repositories never differ
    only by case), so the hash is of the lower-cased identity: a repository renamed from
    ``Acme/Shop`` to ``acme/shop`` keeps its set. Slug and hash hold no dot, so the environment
    after the first dot is exact too; the name stays a DNS subdomain well under 253 characters.
    """
    identity = owner_identity(repo)
    digest = hashlib.sha256(identity.lower().encode()).hexdigest()[:_DIGEST_CHARS]
    slug = re.sub(r"[^a-z0-9]+", "-", identity.lower()).strip("-")[:_SLUG_CHARS].strip("-")
    return ApplySet(
        name=f"mergeway-{slug}-{digest}.{env.name}",
        namespace=effective_namespace("", env.namespace),
        repository=identity,
        environment=env.name,
    )


def legacy_applyset_for(repo: Repository, env: Environment) -> ApplySet:
    """The parent name earlier versions used (``mergeway-<slug>.<env>``), which different repositories share.

    It carries no owner (``repository`` empty): whoever finds one cannot know whose it is.
    """
    slug = re.sub(r"[^a-z0-9]+", "-", f"{repo.forge}-{repo.full_name}".lower()).strip("-")
    name = f"mergeway-{slug}"[:200].rstrip("-") + f".{env.name}"
    return ApplySet(name=name, namespace=effective_namespace("", env.namespace))


def parent_impostor(manifest: Manifest) -> str:
    """Why ``manifest`` has the identity of an ApplySet parent (``""``: it has not).

    A parent records which kinds and namespaces its members may be in and whose they are, and a
    prune deletes what it lists. A rendered object that replaced one (its own repository's, or
    another's in a namespace it may write) would redirect the next prune or take over another
    repository's set, so none is ever applied: not a ConfigMap named like a Mergeway parent, in any
    namespace, nor any object carrying a parent's label or annotations.
    """
    if manifest.group == "" and manifest.kind == "ConfigMap" and _PARENT_NAME.fullmatch(manifest.name):
        return texts.PARENT_NAME
    metadata = manifest.obj.get("metadata") or {}
    labels = metadata.get("labels") if isinstance(metadata, dict) else None
    if isinstance(labels, dict) and ID_LABEL in labels:
        return texts.parent_label(ID_LABEL)
    annotations = metadata.get("annotations") if isinstance(metadata, dict) else None
    marks = sorted(k for k in _PARENT_ANNOTATIONS if isinstance(annotations, dict) and k in annotations)
    if marks:
        return texts.parent_annotations(marks)
    return ""


def parent_impostors(manifests: Sequence[Manifest]) -> str:
    """The refusal for the pull request when any manifest has a parent's identity, or ``""``."""
    found = [(m, why) for m in manifests if (why := parent_impostor(m))]
    if not found:
        return ""
    return texts.parent_impostors(
        [(f"{m.kind}/{m.namespace + '/' if m.namespace else ''}{m.name}", m.source, why) for m, why in found]
    )
