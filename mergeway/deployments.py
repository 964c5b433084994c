"""The deployment record: what happened to one commit in one environment, phase by phase.

One record per (repository, environment, commit) is the truth every feature between merges reads
(docs/DESIGN §11): the CLI's ``mergeway status`` today; later the web page, the forge publisher,
drift checks and environment order. Workers write it at each phase transition; anything may read
it. So this module stays light (redis, json, typing): the web process reads records without
importing the Kubernetes engine, renderers or forge clients.

Records are immutable values: :meth:`Deployment.enter` returns a new record with one more phase.
They serialise to JSON only (never pickle: Redis is shared with job payloads). Every Redis key
the record uses is named here and nowhere else (see :class:`Keys`).

The record describes; it never decides. "Never apply an older commit" is decided from the
cluster's ApplySet parent (which survives a Redis flush), not from these records.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from typing import Any, Literal, NamedTuple, get_args

import redis

Phase = Literal["queued", "held", "applying", "applied", "healthy", "failed", "superseded"]
PHASES: tuple[Phase, ...] = get_args(Phase)
#: Phases after which nothing more happens to this record (a new merge gets its own record).
FINAL: frozenset[Phase] = frozenset({"healthy", "failed", "superseded"})
#: How many records each environment keeps (older ones are deleted as new ones arrive).
HISTORY = 50
#: Seconds a record is kept after its last write (the history trims sooner on a busy environment).
RECORD_TTL = 90 * 24 * 3600


class Keys:
    """Every Redis key the deployment records use (the one place they are spelled)."""

    PREFIX = "mergeway:deployments"

    @classmethod
    def record(cls, repository: str, environment: str, commit: str) -> str:
        """The JSON of one record."""
        return f"{cls.PREFIX}:record:{repository}:{environment}:{commit}"

    @classmethod
    def history(cls, repository: str, environment: str) -> str:
        """The environment's commits, newest first (a list capped at :data:`HISTORY`)."""
        return f"{cls.PREFIX}:history:{repository}:{environment}"

    @classmethod
    def index(cls) -> str:
        """Every (repository, environment) with records: a set of JSON pairs."""
        return f"{cls.PREFIX}:environments"

    @classmethod
    def forge_deployment(cls, repository: str, environment: str, commit: str) -> str:
        """The id of the forge's own deployment (GitHub Deployment, GitLab deployment) of that record."""
        return f"{cls.PREFIX}:forge:{repository}:{environment}:{commit}"

    @classmethod
    def forge_active(cls, repository: str, environment: str) -> str:
        """The id of the environment's last successful forge deployment (where the forge does not retire it)."""
        return f"{cls.PREFIX}:forge-active:{repository}:{environment}"


class Entered(NamedTuple):
    """When a phase began (Unix seconds, UTC) and why, in a few words (``""``: nothing to add)."""

    phase: Phase
    at: float
    reason: str = ""


class Failure(NamedTuple):
    """An object that failed (``Kind/namespace/name``) and the reason the cluster gave."""

    object: str
    reason: str


class Counts(NamedTuple):
    applied: int = 0
    pruned: int = 0
    unchanged: int = 0


class Deployment(NamedTuple):
    """One commit's deployment to one environment (forge-neutral: a repository is ``forge:owner/name``)."""

    repository: str
    environment: str
    #: The commit this record follows: the merge that started it.
    commit: str
    #: The pull request merged (0 when not started by one) and who merged it.
    pr: int = 0
    merged_by: str = ""
    #: Every phase entered, in order; the last one is the current phase.
    phases: tuple[Entered, ...] = ()
    counts: Counts = Counts()
    failures: tuple[Failure, ...] = ()
    #: The commit actually applied (the branch head, which may include later merges) and, once the
    #: rollout was healthy, the healthy one.
    applied_commit: str = ""
    healthy_commit: str = ""
    #: What the environments page shows beside the phases (added later: older records read as "").
    #: The PR's title (untrusted text: escaped where shown), where the environment deploys, and the
    #: repository's web address as the configured forge reports it (commit and PR links start there).
    title: str = ""
    cluster: str = ""
    namespace: str = ""
    repository_url: str = ""

    @property
    def phase(self) -> Phase | None:
        return self.phases[-1].phase if self.phases else None

    @property
    def reason(self) -> str:
        return self.phases[-1].reason if self.phases else ""

    def began(self, phase: Phase) -> float | None:
        """When ``phase`` was last entered (``None``: never)."""
        return next((e.at for e in reversed(self.phases) if e.phase == phase), None)

    def enter(self, phase: Phase, *, reason: str = "", at: float | None = None, **changes: Any) -> Deployment:
        """This record in ``phase`` from ``at`` (now), with ``changes`` to its other fields."""
        if phase not in PHASES:
            raise ValueError(f"unknown deployment phase {phase!r}")
        entered = Entered(phase, time.time() if at is None else at, reason)
        return self._replace(phases=(*self.phases, entered), **changes)

    def to_json(self) -> str:
        data = self._asdict()
        data["phases"] = [e._asdict() for e in self.phases]
        data["counts"] = self.counts._asdict()
        data["failures"] = [f._asdict() for f in self.failures]
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> Deployment:
        data: dict[str, Any] = json.loads(text)
        return cls(
            repository=str(data["repository"]),
            environment=str(data["environment"]),
            commit=str(data["commit"]),
            pr=int(data.get("pr") or 0),
            merged_by=str(data.get("merged_by") or ""),
            phases=tuple(Entered(e["phase"], float(e["at"]), str(e.get("reason", ""))) for e in data["phases"]),
            counts=Counts(**data.get("counts") or {}),
            failures=tuple(Failure(str(f["object"]), str(f["reason"])) for f in data.get("failures") or ()),
            applied_commit=str(data.get("applied_commit") or ""),
            healthy_commit=str(data.get("healthy_commit") or ""),
            **{name: str(data.get(name) or "") for name in _PAGE_FIELDS},
        )


class Deployments:
    """Records in Redis: written by workers, read by anyone (the CLI, later the web process)."""

    def __init__(self, client: redis.Redis) -> None:
        self.redis = client

    def get(self, repository: str, environment: str, commit: str) -> Deployment | None:
        raw = self.redis.get(Keys.record(repository, environment, commit))
        return Deployment.from_json(raw) if raw else None

    def save(self, record: Deployment) -> None:
        """Store ``record`` as its commit's record and the newest of its environment; trim the history."""
        history = Keys.history(record.repository, record.environment)
        pipe = self.redis.pipeline()
        pipe.set(Keys.record(record.repository, record.environment, record.commit), record.to_json(), ex=RECORD_TTL)
        pipe.lrem(history, 0, record.commit)
        pipe.lpush(history, record.commit)
        pipe.lrange(history, HISTORY, -1)
        pipe.ltrim(history, 0, HISTORY - 1)
        pipe.sadd(Keys.index(), json.dumps([record.repository, record.environment]))
        dropped = pipe.execute()[3]
        if dropped:
            self.redis.delete(*(Keys.record(record.repository, record.environment, _text(c)) for c in dropped))

    def advance(
        self,
        repository: str,
        environment: str,
        commit: str,
        phase: Phase,
        *,
        reason: str = "",
        **changes: Any,
    ) -> Deployment:
        """Enter ``phase`` on the stored record (a new one if none), save it and return it.

        Read-modify-write without a transaction: the writers of one (environment, commit) are
        serialised by the environment's deploy lock, except "queued", written before it is taken.
        """
        record = self.get(repository, environment, commit) or Deployment(repository, environment, commit)
        record = record.enter(phase, reason=reason, **changes)
        self.save(record)
        return record

    def history(self, repository: str, environment: str, limit: int = HISTORY) -> list[Deployment]:
        """The environment's records, newest first."""
        commits = [_text(c) for c in self.redis.lrange(Keys.history(repository, environment), 0, limit - 1)]
        raws = self.redis.mget([Keys.record(repository, environment, c) for c in commits]) if commits else []
        return [Deployment.from_json(raw) for raw in raws if raw]

    def histories(self, pairs: list[tuple[str, str]], limit: int = HISTORY) -> list[list[Deployment]]:
        """:meth:`history` of each pair, in two round trips whatever their number (the page reads them all)."""
        if not pairs:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for repository, environment in pairs:
            pipe.lrange(Keys.history(repository, environment), 0, limit - 1)
        commits = [[_text(c) for c in found] for found in pipe.execute()]
        keys = [Keys.record(r, e, c) for (r, e), found in zip(pairs, commits, strict=True) for c in found]
        raws = iter(self.redis.mget(keys) if keys else [])
        return [[Deployment.from_json(raw) for raw in [next(raws) for _ in found] if raw] for found in commits]

    def environments(self) -> list[tuple[str, str]]:
        """Every (repository, environment) that has records, sorted."""
        pairs = (json.loads(raw) for raw in self.redis.smembers(Keys.index()))
        return sorted((str(r), str(e)) for r, e in pairs)

    def latest(self, pairs: Iterable[tuple[str, str]] | None = None) -> list[Deployment]:
        """The newest record of each (repository, environment) (every one known by default)."""
        out = []
        for repository, environment in self.environments() if pairs is None else pairs:
            newest = self.history(repository, environment, limit=1)
            out.extend(newest)
        return out


class ForgeDeploymentIds:
    """Which forge deployment shows (repository, environment, commit): one per record, whoever creates it.

    Kept beside the record rather than in it: the forge is written from a background thread while
    the deploy writes the record's phases, and a second read-modify-write of the record would race.
    """

    def __init__(self, client: redis.Redis, repository: str) -> None:
        self.redis = client
        self.repository = repository

    def get(self, environment: str, commit: str) -> int | None:
        raw = self.redis.get(Keys.forge_deployment(self.repository, environment, commit))
        return int(raw) if raw else None

    def claim(self, environment: str, commit: str, deployment_id: int) -> int:
        """Remember ``deployment_id`` unless another job already did; the id that counts."""
        key = Keys.forge_deployment(self.repository, environment, commit)
        if self.redis.set(key, str(deployment_id), nx=True, ex=RECORD_TTL):
            return deployment_id
        raw = self.redis.get(key)
        return int(raw) if raw else deployment_id

    def replace_active(self, environment: str, deployment_id: int) -> int | None:
        """Make ``deployment_id`` the environment's successful one; the one it replaces, if any."""
        raw = self.redis.set(Keys.forge_active(self.repository, environment), str(deployment_id), get=True)
        return int(raw) if raw else None


#: The fields the page reads, all plain text (see :class:`Deployment`).
_PAGE_FIELDS = ("title", "cluster", "namespace", "repository_url")


def _text(value: bytes | str) -> str:
    """A Redis reply as text, whether or not the client decodes responses."""
    return value.decode() if isinstance(value, bytes) else value


def describe(record: Deployment, *, width: int = 12) -> list[str]:
    """Lines for a terminal: the record's header, then one line per phase with its UTC time."""
    head = f"{record.repository} {record.environment} {record.commit[:width]}"
    who = f" #{record.pr}" if record.pr else ""
    who += f" merged by {record.merged_by}" if record.merged_by else ""
    lines = [f"{head}{who}: {record.phase or 'unknown'}"]
    for entered in record.phases:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(entered.at))
        lines.append(f"  {stamp}  {entered.phase}" + (f"  {entered.reason}" if entered.reason else ""))
    if record.phase in FINAL and any(record.counts):
        c = record.counts
        lines.append(f"  {c.applied} applied, {c.pruned} pruned, {c.unchanged} unchanged")
    lines.extend(f"  failed: {f.object}: {f.reason}" for f in record.failures[:10])
    return lines
