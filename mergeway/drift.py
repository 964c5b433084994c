"""Drift: what changed in the cluster behind Git's back, as plain values every part can read.

A drift check (:mod:`mergeway.jobs.drift`) compares one environment's live objects with the commit
last *applied* there and produces a :class:`DriftCheck`. Several parts read it without importing
the Kubernetes engine or the forge clients: the forge's drift issue, the environments page (the
web process), ``/drift``'s reply. So this module is a leaf: dataclasses, JSON and a small Redis
store, nothing else.

Values are immutable and round-trip through JSON only (Redis is shared with job payloads; never
pickle). Live values of Secrets are masked before they get here, exactly as previews mask them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal, get_args

import redis

DriftState = Literal["changed", "deleted"]
DRIFT_STATES: tuple[DriftState, ...] = get_args(DriftState)

#: Seconds a stored result is kept after the last check wrote it (checks rewrite it every interval).
RESULT_TTL = 30 * 24 * 3600


@dataclass(frozen=True)
class FieldDrift:
    """One field whose live value is not what Git sets (or that someone else took over)."""

    #: JSON pointer of the field, e.g. ``/spec/replicas``.
    path: str
    #: The live value as YAML text (masked for Secrets); ``""`` when the field is absent live.
    live: str
    #: The value the last applied commit sets, as YAML text (masked for Secrets); ``""`` when absent.
    git: str
    #: The field manager owning the live value (``kubectl-scale``, ``kubectl-edit``…); ``""`` unknown.
    manager: str = ""
    #: When that manager last wrote the object (ISO time from ``managedFields``); ``""`` unknown.
    since: str = ""

    def to_dict(self) -> dict[str, str]:
        return {"path": self.path, "live": self.live, "git": self.git, "manager": self.manager, "since": self.since}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FieldDrift:
        return cls(
            path=str(data["path"]),
            live=str(data.get("live") or ""),
            git=str(data.get("git") or ""),
            manager=str(data.get("manager") or ""),
            since=str(data.get("since") or ""),
        )


@dataclass(frozen=True)
class ObjectDrift:
    """One object that drifted: changed in fields Git sets, or deleted by hand."""

    api_version: str
    kind: str
    namespace: str
    name: str
    state: DriftState
    fields: tuple[FieldDrift, ...] = ()
    #: Unified diff from Git to live, masked for Secrets (``""`` when not computed).
    diff: str = ""
    #: The environment's namespace: an object there is named without it (see :attr:`ref`).
    default_namespace: str = ""

    @property
    def ref(self) -> str:
        """``Deployment/web``, or ``Deployment/other-ns/web`` outside the environment's namespace."""
        if self.namespace and self.namespace != self.default_namespace:
            return f"{self.kind}/{self.namespace}/{self.name}"
        return f"{self.kind}/{self.name}"

    @property
    def managers(self) -> tuple[str, ...]:
        """Who changed it: the distinct managers of its drifted fields, in order of appearance."""
        return tuple(dict.fromkeys(f.manager for f in self.fields if f.manager))

    def to_dict(self) -> dict[str, Any]:
        return {
            "api_version": self.api_version,
            "kind": self.kind,
            "namespace": self.namespace,
            "name": self.name,
            "state": self.state,
            "fields": [f.to_dict() for f in self.fields],
            "diff": self.diff,
            "default_namespace": self.default_namespace,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ObjectDrift:
        raw = str(data["state"])
        if raw not in DRIFT_STATES:
            raise ValueError(f"unknown drift state {raw!r}")
        state: DriftState = "deleted" if raw == "deleted" else "changed"
        return cls(
            api_version=str(data["api_version"]),
            kind=str(data["kind"]),
            namespace=str(data.get("namespace") or ""),
            name=str(data["name"]),
            state=state,
            fields=tuple(FieldDrift.from_dict(f) for f in data.get("fields") or ()),
            diff=str(data.get("diff") or ""),
            default_namespace=str(data.get("default_namespace") or ""),
        )


@dataclass(frozen=True)
class DriftCheck:
    """One check of one environment against the commit last applied there.

    ``repository`` is ``forge:owner/name`` (as the deployment record spells it). ``error`` says
    why the check could not compare (cluster unreachable, commit unreadable): then ``objects`` is
    empty and means nothing. ``requests`` counts the Kubernetes API requests the check made.
    """

    repository: str
    environment: str
    #: The commit compared against: the one last applied (never the branch head).
    commit: str
    #: When the check ran (Unix seconds).
    checked_at: float
    objects: tuple[ObjectDrift, ...] = ()
    error: str = ""
    requests: int = 0

    @property
    def drifted(self) -> bool:
        return bool(self.objects) and not self.error

    def to_json(self) -> str:
        return json.dumps(
            {
                "repository": self.repository,
                "environment": self.environment,
                "commit": self.commit,
                "checked_at": self.checked_at,
                "objects": [o.to_dict() for o in self.objects],
                "error": self.error,
                "requests": self.requests,
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> DriftCheck:
        data: dict[str, Any] = json.loads(text)
        return cls(
            repository=str(data["repository"]),
            environment=str(data["environment"]),
            commit=str(data.get("commit") or ""),
            checked_at=float(data.get("checked_at") or 0.0),
            objects=tuple(ObjectDrift.from_dict(o) for o in data.get("objects") or ()),
            error=str(data.get("error") or ""),
            requests=int(data.get("requests") or 0),
        )


class DriftStore:
    """The last check per (repository, environment), in Redis: written by the drift job, read by anyone."""

    PREFIX = "mergeway:drift:last"

    def __init__(self, client: redis.Redis) -> None:
        self.redis = client

    @classmethod
    def key(cls, repository: str, environment: str) -> str:
        return f"{cls.PREFIX}:{repository}:{environment}"

    def get(self, repository: str, environment: str) -> DriftCheck | None:
        raw = self.redis.get(self.key(repository, environment))
        return DriftCheck.from_json(raw) if raw else None

    def put(self, check: DriftCheck) -> None:
        self.redis.set(self.key(check.repository, check.environment), check.to_json(), ex=RESULT_TTL)
