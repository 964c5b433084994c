"""Gates: what may hold a merge's deploy of an environment, and the merges waiting behind one.

Three things can hold a deploy, and they share one mechanism (:mod:`mergeway.jobs.waiting`):

* a **lock** (``/lock prod incident 42``), per (repository, environment), until ``/unlock``;
* a **freeze window** (the repository's ``freeze:`` or the operator's ``freezes:``), until it ends;
* **environment order** (``after: [staging]``), until every environment followed is healthy on
  the same merge.

:func:`decide` is the rule, as a pure function of what was read (unit-tested alone). The stores
keep locks and waiting merges in Redis with no expiry, so they survive worker restarts and, Redis
running with its append-only file, Redis restarts too. Light imports (redis, json): the web process
and the CLI read locks for ``/help``, previews and ``mergeway status`` without the engine.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Mapping, Sequence
from typing import Any, Literal, NamedTuple

import redis

from mergeway.deployments import Deployment
from mergeway.freeze import Freeze

GateKind = Literal["", "lock", "freeze", "after"]
#: Longest lock reason kept (a comment's first line, untrusted text).
MAX_REASON = 200


class Keys:
    """Every Redis key of the gates (the one place they are spelled)."""

    PREFIX = "mergeway:gates"

    @classmethod
    def lock(cls, repository: str, environment: str) -> str:
        return f"{cls.PREFIX}:lock:{repository}:{environment}"

    @classmethod
    def waiting(cls, repository: str, environment: str) -> str:
        """A hash: merge commit → JSON of its :class:`Waiter`."""
        return f"{cls.PREFIX}:waiting:{repository}:{environment}"

    @classmethod
    def waiting_index(cls) -> str:
        """Every (repository, environment) with waiting merges: a set of JSON pairs."""
        return f"{cls.PREFIX}:waiting-environments"

    @classmethod
    def release(cls, repository: str, environment: str) -> str:
        """The lock under which one job decides and claims the waiting merges of an environment."""
        return f"{cls.PREFIX}:release:{repository}:{environment}"


class Lock(NamedTuple):
    """An environment's lock: who took it, when (Unix seconds) and why."""

    by: str
    since: float
    reason: str = ""

    def describe(self) -> str:
        """``locked by @alice: incident 42`` (what a status and the record say)."""
        return f"locked by @{self.by}" + (f": {self.reason}" if self.reason else "")

    def footer(self, environment: str) -> str:
        """``prod`` is locked by @alice since 14:02 UTC: incident 42 (previews, /help, status)."""
        since = time.strftime("%H:%M UTC", time.gmtime(self.since))
        if time.time() - self.since > 20 * 3600:
            since = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(self.since))
        return f"`{environment}` is locked by @{self.by} since {since}" + (f": {self.reason}" if self.reason else "")


class Gate(NamedTuple):
    """Whether a deploy may go now; if not, what holds it, why (in words) and until when if known."""

    open: bool
    kind: GateKind = ""
    reason: str = ""
    #: Unix seconds when the gate opens by itself (a freeze's end); 0: on an event (unlock, health).
    until: float = 0.0
    #: For ``after``: the commit every followed environment is healthy on, which this one deploys.
    pin: str = ""


OPEN = Gate(True)


def decide(
    lock: Lock | None,
    freeze: Freeze | None,
    upstream: Mapping[str, Deployment | None],
    *,
    during_freeze: str = "",
) -> Gate:
    """The gate of one environment for one merge: a lock first, then a freeze, then order.

    ``upstream`` maps each environment followed to its record for the same merge (``None``: not
    deployed yet). An environment follows only healthy ones, and deploys the commit they are healthy
    on (all the same, or it waits), so what runs in production is what was healthy in staging.
    ``during_freeze`` names the admin who lets this one deploy through a freeze (said in the open
    gate's reason, for the record).
    """
    if lock is not None:
        return Gate(False, "lock", lock.describe())
    if freeze is not None and not during_freeze:
        return Gate(False, "freeze", frozen_reason(freeze), until=freeze.ends_at.timestamp())
    pins: set[str] = set()
    for name, record in upstream.items():
        if record is None or record.phase != "healthy" or not record.healthy_commit:
            return Gate(False, "after", _upstream_reason(name, record))
        pins.add(record.healthy_commit)
    if len(pins) > 1:
        listing = ", ".join(f"{n} on {r.healthy_commit[:12]}" for n, r in upstream.items() if r is not None)
        return Gate(False, "after", f"waiting for the environments it follows to be healthy on one commit ({listing})")
    through = ""
    if freeze is not None and during_freeze:
        through = f"deployed during the freeze by @{during_freeze} ({frozen_reason(freeze)})"
    return Gate(True, reason=through, pin=next(iter(pins), ""))


def frozen_reason(freeze: Freeze) -> str:
    """``frozen until 2026-12-07 08:00 UTC (weekend)``: for statuses, comments and the record."""
    end = freeze.ends_at.astimezone(dt.UTC)
    stamp = end.strftime("%Y-%m-%d %H:%M:%S" if end.second else "%Y-%m-%d %H:%M")
    why = f" ({freeze.reason})" if freeze.reason else ""
    return f"frozen {'at least ' if freeze.open_ended else ''}until {stamp} UTC{why}"


def _upstream_reason(name: str, record: Deployment | None) -> str:
    if record is None or record.phase is None:
        return f"waiting for {name} to deploy this merge and be healthy"
    if record.phase == "failed":
        return f"waiting for {name}: its deploy of this merge failed ({record.reason or 'see its comment'})"
    if record.phase == "held":
        return f"waiting for {name}, which is held ({record.reason})"
    if record.phase == "superseded":
        return f"waiting for {name}: a later merge deployed it; that merge deploys this environment"
    return f"waiting for {name} to be healthy on this merge (it is {record.phase})"


class Locks:
    """Environment locks in Redis, per (repository ``forge:owner/name``, environment); no expiry."""

    def __init__(self, client: redis.Redis) -> None:
        self.redis = client

    def get(self, repository: str, environment: str) -> Lock | None:
        raw = self.redis.get(Keys.lock(repository, environment))
        if not raw:
            return None
        data = json.loads(raw)
        return Lock(str(data["by"]), float(data["since"]), str(data.get("reason", "")))

    def take(self, repository: str, environment: str, by: str, reason: str = "") -> tuple[Lock, bool]:
        """Lock the environment; ``(lock, True)`` when taken now, ``(existing, False)`` when already locked."""
        lock = Lock(by, time.time(), " ".join(reason.split())[:MAX_REASON])
        data = json.dumps(lock._asdict(), sort_keys=True)
        if self.redis.set(Keys.lock(repository, environment), data, nx=True):
            return lock, True
        return self.get(repository, environment) or lock, False

    def release(self, repository: str, environment: str) -> Lock | None:
        """Unlock; the lock that was held (``None``: it was not locked)."""
        held = self.get(repository, environment)
        self.redis.delete(Keys.lock(repository, environment))
        return held

    def all(self, repository: str) -> dict[str, Lock]:
        """Every lock of ``repository``, by environment."""
        prefix = Keys.lock(repository, "")
        names = [_text(k)[len(prefix) :] for k in self.redis.scan_iter(match=_glob_escape(prefix) + "*", count=500)]
        return self.of(repository, sorted(names))

    def of(self, repository: str, environments: Sequence[str]) -> dict[str, Lock]:
        """The locks among ``environments`` of ``repository`` (one round trip)."""
        if not environments:
            return {}
        raws = self.redis.mget([Keys.lock(repository, e) for e in environments])
        out = {}
        for env, raw in zip(environments, raws, strict=True):
            if raw:
                data = json.loads(raw)
                out[env] = Lock(str(data["by"]), float(data["since"]), str(data.get("reason", "")))
        return out


class Waiter(NamedTuple):
    """A merge waiting to deploy an environment: its event, since when, and what holds it."""

    commit: str
    #: The merge event (:func:`mergeway.events.to_dict`), deployed again when released.
    event: dict[str, Any]
    #: Unix seconds it first began to wait: the newest merge is the one that waited last.
    since: float
    kind: GateKind = ""
    reason: str = ""
    until: float = 0.0

    def to_json(self) -> str:
        return json.dumps(self._asdict(), sort_keys=True)

    @classmethod
    def from_json(cls, raw: str | bytes) -> Waiter:
        data = json.loads(raw)
        return cls(
            str(data["commit"]),
            dict(data["event"]),
            float(data["since"]),
            data.get("kind", ""),
            str(data.get("reason", "")),
            float(data.get("until") or 0.0),
        )


_UNLIST_IF_EMPTY = """
if redis.call('EXISTS', KEYS[1]) == 0 then redis.call('SREM', KEYS[2], ARGV[1]) end
return 0
"""


class Waiting:
    """The merges waiting per (repository, environment), in Redis with no expiry."""

    def __init__(self, client: redis.Redis) -> None:
        self.redis = client

    def add(self, repository: str, environment: str, waiter: Waiter) -> Waiter:
        """Store ``waiter`` (keeping when its commit first began to wait); the stored one."""
        key = Keys.waiting(repository, environment)
        old = self.redis.hget(key, waiter.commit)
        if old:
            waiter = waiter._replace(since=Waiter.from_json(old).since)
        pipe = self.redis.pipeline()
        pipe.hset(key, waiter.commit, waiter.to_json())
        pipe.sadd(Keys.waiting_index(), json.dumps([repository, environment]))
        pipe.execute()
        return waiter

    def all(self, repository: str, environment: str) -> list[Waiter]:
        """The environment's waiting merges, newest first."""
        raws = self.redis.hvals(Keys.waiting(repository, environment))
        return sorted((Waiter.from_json(r) for r in raws), key=lambda w: w.since, reverse=True)

    def remove(self, repository: str, environment: str, commits: Sequence[str]) -> list[str]:
        """Take ``commits`` off the environment's list; the ones this call removed (another may race)."""
        key = Keys.waiting(repository, environment)
        removed = [c for c in commits if self.redis.hdel(key, c)]
        # Off the index only if still empty, in one step: a waiter added meanwhile keeps it listed.
        self.redis.eval(_UNLIST_IF_EMPTY, 2, key, Keys.waiting_index(), json.dumps([repository, environment]))
        return removed

    def take_all(self, repository: str, environment: str) -> list[Waiter]:
        """Remove and return every waiting merge of the environment, newest first (atomic: one taker)."""
        key = Keys.waiting(repository, environment)
        pipe = self.redis.pipeline(transaction=True)
        pipe.hvals(key)
        pipe.delete(key)
        pipe.srem(Keys.waiting_index(), json.dumps([repository, environment]))
        raws = pipe.execute()[0]
        return sorted((Waiter.from_json(r) for r in raws), key=lambda w: w.since, reverse=True)

    def environments(self) -> list[tuple[str, str]]:
        """Every (repository, environment) with waiting merges, sorted."""
        pairs = (json.loads(raw) for raw in self.redis.smembers(Keys.waiting_index()))
        return sorted((str(r), str(e)) for r, e in pairs)


def describe_gates(client: redis.Redis, repository: str, environment: str) -> list[str]:
    """Lines for ``mergeway status``: the environment's lock and the merges waiting on it."""
    head = f"{repository} {environment}"
    lines = []
    lock = Locks(client).get(repository, environment)
    if lock is not None:
        since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(lock.since))
        lines.append(f"{head}: {lock.describe()} (since {since})")
    waiters = Waiting(client).all(repository, environment)
    if waiters:
        newest = waiters[0]
        lines.append(f"{head}: {len(waiters)} merge(s) waiting; newest {newest.commit[:12]}: {newest.reason}")
    return lines


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _glob_escape(text: str) -> str:
    """``text`` matched literally in a Redis ``SCAN MATCH`` pattern."""
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


def utc(at: float | None = None) -> dt.datetime:
    """``at`` (Unix seconds; now by default) as an aware UTC datetime, what freeze windows compare."""
    return dt.datetime.fromtimestamp(time.time() if at is None else at, dt.UTC)
