"""A Redis lock that lives only as long as its holder.

A deploy can take minutes (rollouts), but a worker killed mid-deploy must not block the
redelivered job for that long. So the lock has a short TTL and a heartbeat thread extends it while
the holder is alive: a dead worker's lock expires within ``ttl`` seconds and the retry proceeds.

The heartbeat keeps trying through a short Redis outage (a restart with AOF keeps the key and its
expiry), and says so loudly if the lock was lost meanwhile: with Redis down for longer than
``ttl`` another job may take the environment; that is the one case the lock cannot cover (see
docs/DECISIONS.md, "Failures").
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator

import redis
from redis.exceptions import LockError, LockNotOwnedError

from mergeway.report.failures import lock_unavailable

log = logging.getLogger("mergeway.jobs.locks")


class LockUnavailable(RuntimeError):
    """Another job held the lock for longer than we were willing to wait."""


@contextlib.contextmanager
def held_lock(
    client: redis.Redis,
    key: str,
    *,
    ttl: float = 20.0,
    wait: float = 900.0,
    on_wait: Callable[[], None] | None = None,
) -> Iterator[None]:
    """Hold ``key`` for the ``with`` block; ``on_wait`` runs once if another job holds it first."""
    lock = client.lock(key, timeout=ttl, blocking_timeout=wait, thread_local=False)
    if not lock.acquire(blocking=False):
        if on_wait is not None:
            on_wait()
        if not lock.acquire():
            raise LockUnavailable(lock_unavailable(key, wait))
    stop = threading.Event()

    def heartbeat() -> None:
        while not stop.wait(ttl / 3):
            try:
                lock.reacquire()
            except LockNotOwnedError:
                log.error("lost the lock %s (Redis was unreachable for longer than %gs)", key, ttl)
                return
            except (LockError, redis.RedisError) as exc:
                log.warning("could not extend the lock %s: %s; retrying", key, type(exc).__name__)

    beat = threading.Thread(target=heartbeat, name=f"lock-heartbeat:{key}", daemon=True)
    beat.start()
    try:
        yield
    finally:
        stop.set()
        beat.join(timeout=5)
        with contextlib.suppress(LockError, redis.RedisError):
            lock.release()
