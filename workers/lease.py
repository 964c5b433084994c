"""Job leases: a worker that is alive keeps its jobs; a job whose worker host died moves on quickly.

How kombu's Redis transport hands out jobs (``kombu/transport/redis.py``): a delivered message is
moved from its queue list into the ``unacked`` hash, and its delivery tag is added to the
``unacked_index`` sorted set *with the delivery time as score*. Any worker's periodic
``restore_visible`` sweep pushes back to its queue every message whose score is older than
``visibility_timeout``; an ack removes both entries. The score is never updated by kombu, so the
visibility timeout is at once "how long a dead host's job stays stuck" and "the longest a job may
run before it is handed out a second time". Celery's advice is to make it longer than any job,
which is why it used to be an hour.

Mergeway turns the score into a **lease**: the worker's main process (which holds every message it
reserved, running or waiting for a pool slot) rewrites the score of each of its unacknowledged
messages to "now" every ``lease / 4`` seconds (``ZADD XX``: an acknowledged message is never added
back). The visibility timeout can then be short (``MERGEWAY_JOB_LEASE_SECONDS``, 60 s): a deploy
waiting ten minutes for a rollout is renewed 40 times and never redelivered while its worker lives;
when the host dies (main process and pool gone at once) renewals stop and another worker's sweep,
every few seconds, requeues the job one lease later. A pool process that hangs while its main
process lives is bounded by the task's hard time limit instead.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import redis
from celery import bootsteps
from celery.worker import state

log = logging.getLogger("mergeway.worker.lease")

#: kombu's default name for the sorted set of unacknowledged deliveries (transport option
#: ``unacked_index_key``; Mergeway does not change it, nor ``global_keyprefix``).
UNACKED_INDEX = "unacked_index"


def held_delivery_tags() -> list[str]:
    """Delivery tags of every message this worker has reserved and not yet acknowledged."""
    tags = []
    for request in [*state.reserved_requests, *state.active_requests]:
        message = getattr(request, "message", None)
        tag = getattr(message, "delivery_tag", None)
        if tag and not getattr(message, "acknowledged", False):
            tags.append(str(tag))
    return sorted(set(tags))


def renew(client: redis.Redis, tags: list[str], now: float | None = None) -> int:
    """Move the lease of ``tags`` to ``now``; returns how many were still unacknowledged."""
    if not tags:
        return 0
    stamp = time.time() if now is None else now
    changed = client.zadd(UNACKED_INDEX, dict.fromkeys(tags, stamp), xx=True, ch=True)
    return int(changed or 0)


class LeaseRenewal(bootsteps.StartStopStep):  # type: ignore[misc]  # celery is untyped
    """Consumer bootstep: renew the leases of held messages on the worker's event-loop timer."""

    requires = ("celery.worker.consumer.tasks:Tasks",)

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self.tref: Any = None
        self.client: redis.Redis | None = None
        self.interval = 15.0

    def start(self, parent: Any) -> None:
        options = parent.app.conf.broker_transport_options or {}
        lease = float(options.get("visibility_timeout", 3600))
        self.interval = max(1.0, lease / 4)
        # Short socket timeouts: this runs on the worker's event loop, which must not hang on Redis.
        self.client = redis.Redis.from_url(parent.app.conf.broker_url, socket_timeout=2, socket_connect_timeout=2)
        self.tref = parent.timer.call_repeatedly(self.interval, self.renew_all, priority=10)

    def renew_all(self) -> None:
        if self.client is None:
            return
        tags = held_delivery_tags()
        try:
            renewed = renew(self.client, tags)
        except redis.RedisError as exc:
            # The lease ages while Redis is unreachable; renewing resumes when it is back.
            log.warning("could not renew %d job lease(s): %s", len(tags), type(exc).__name__)
            return
        if tags:
            log.debug("renewed %d of %d job lease(s)", renewed, len(tags))

    def stop(self, parent: Any) -> None:
        if self.tref is not None:
            self.tref.cancel()
            self.tref = None
        if self.client is not None:
            self.client.close()
            self.client = None
