"""``mergeway-beat``: start the periodic jobs, once per interval however many replicas run.

The periodic kinds are the entries of :data:`mergeway.jobs.kinds.KINDS` with ``every > 0``; each
is sent to its queue as a :class:`mergeway.events.Tick` and runs on whichever worker takes it.

Celery beat with RedBeat's scheduler keeps the schedule in Redis behind a lock: one beat process
holds the lock and sends; any other one waits for the lock, so running two replicas (a rolling
update, a second pod by mistake) never sends a job twice, and a replica takes over about
``MERGEWAY_BEAT_LOCK_SECONDS`` after the holder died. The schedule's state (when each kind last ran)
is in Redis too, so a restart neither skips nor repeats an interval.

Liveness: every replica, holding the lock or waiting for it, refreshes a heartbeat key of its own
host in Redis from a thread; ``mergeway-beat --check`` (the chart's liveness probe) exits 0 while
that key is fresh. The replica holding the lock also names itself in :data:`LEADER_KEY` on each
scheduler tick, which is what an operator reads to know who sends.
"""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
import time
from datetime import datetime
from typing import Any

import redis
from redbeat import RedBeatScheduler

from mergeway.config import ConfigError, Settings
from mergeway.jobs.kinds import QUEUES, TASK_NAMES, periodic

#: Every Redis key of the scheduler starts with this (RedBeat's schedule and lock included).
KEY_PREFIX = "mergeway:beat"
#: This host's heartbeat, refreshed every :data:`HEARTBEAT_SECONDS`, expiring after three missed.
ALIVE_KEY = KEY_PREFIX + ":alive:{host}"
#: The host of the replica that holds the lock, refreshed on each of its ticks.
LEADER_KEY = KEY_PREFIX + ":leader"
HEARTBEAT_SECONDS = 5.0
#: The longest the scheduler sleeps between ticks: how late a newly due job can be sent.
MAX_LOOP_SECONDS = 1.0


def schedule(settings: Settings | None = None) -> dict[str, dict[str, Any]]:
    """Celery's ``beat_schedule`` for the periodic kinds: a tick every ``every`` seconds on the kind's queue.

    A tick not taken before the next one is due expires: a periodic job that cannot keep up runs
    late, never twice in a row to catch up.
    """
    return {
        kind: {
            "task": TASK_NAMES[kind],
            "schedule": seconds,
            "args": [{"job": kind}],
            "options": {"queue": QUEUES[kind], "expires": seconds},
        }
        for kind, seconds in periodic(settings).items()
    }


class Scheduler(RedBeatScheduler):  # type: ignore[misc]  # redbeat and celery are untyped
    """RedBeat's scheduler, stamping each tick with the time it was due and naming the sender."""

    def apply_async(self, entry: Any, producer: Any = None, advance: bool = True, **kwargs: Any) -> Any:
        # reserve() returns a new entry and stores only its run time, so its arguments can be
        # stamped without changing the stored schedule.
        entry = self.reserve(entry) if advance else entry
        due: datetime = entry.last_run_at  # set by reserve(): this run's time
        entry.args = [{**(entry.args[0] if entry.args else {}), "at": due.timestamp()}]
        return super().apply_async(entry, producer, advance=False, **kwargs)

    def tick(self, *args: Any, **kwargs: Any) -> float:
        interval: float = super().tick(*args, **kwargs)
        if not hasattr(self, "_leader"):
            self._leader = redis.Redis.from_url(self.app.conf.redbeat_redis_url, socket_timeout=5)
        # The next tick tries again; RedBeat itself fails loudly without Redis.
        with contextlib.suppress(redis.RedisError):
            self._leader.set(LEADER_KEY, socket.gethostname(), ex=max(int(self.lock_timeout), 1))
        return interval


def configure(app: Any, redis_url: str, lock_seconds: float, settings: Settings | None = None) -> None:
    """Point ``app``'s beat at RedBeat in ``redis_url`` with the periodic kinds' schedule."""
    app.conf.update(
        beat_scheduler="workers.beat:Scheduler",
        beat_schedule=schedule(settings),
        beat_max_loop_interval=MAX_LOOP_SECONDS,
        redbeat_redis_url=redis_url,
        redbeat_redis_options={},
        redbeat_key_prefix=KEY_PREFIX,
        redbeat_lock_timeout=int(lock_seconds),
    )


def heartbeat(client: redis.Redis, host: str, stop: threading.Event) -> None:
    """Refresh this host's heartbeat until ``stop``; Redis being away only skips a beat."""
    while not stop.is_set():
        with contextlib.suppress(redis.RedisError):
            client.set(ALIVE_KEY.format(host=host), str(time.time()), ex=int(HEARTBEAT_SECONDS * 3))
        stop.wait(HEARTBEAT_SECONDS)


def check(client: redis.Redis, host: str) -> bool:
    """Whether this host's beat process is alive (its heartbeat has not expired)."""
    return bool(client.exists(ALIVE_KEY.format(host=host)))


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        settings = Settings.from_env(role="cli")
    except ConfigError as exc:
        print(f"mergeway-beat refuses to start: {exc}", file=sys.stderr)
        return 2
    client = redis.Redis.from_url(settings.redis_url, socket_timeout=5)
    host = socket.gethostname()
    if argv[:1] == ["--check"]:
        try:
            alive = check(client, host)
        except redis.RedisError as exc:
            print(f"mergeway-beat: Redis unreachable: {type(exc).__name__}", file=sys.stderr)
            return 1
        print("alive" if alive else "no heartbeat", file=sys.stderr)
        return 0 if alive else 1

    # Imported once the settings are validated: the Celery app reads them when it is created, and a
    # bad setting must end in the one-line refusal above, not a traceback.
    from celery import signals

    from mergeway.logs import configure_logging
    from workers.celery_app import app

    def _logging(**_: object) -> None:
        configure_logging(settings)  # JSON logs through the scrubber, instead of Celery's own set-up

    signals.setup_logging.connect(_logging, weak=False)
    configure(app, settings.redis_url, settings.beat_lock_seconds, settings)
    stop = threading.Event()
    threading.Thread(target=heartbeat, args=(client, host, stop), name="beat-heartbeat", daemon=True).start()
    try:
        app.start(["--quiet", "beat", "--loglevel", settings.log_level, *argv])
    finally:
        stop.set()
    return 0


if __name__ == "__main__":
    sys.exit(main())
