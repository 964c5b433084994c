"""Prometheus metrics shared by the web service and the workers.

Both run several processes (gunicorn workers, Celery's prefork children), and a scrape must see
the sum of them, not whichever process happened to answer. So when ``PROMETHEUS_MULTIPROC_DIR`` is
set (``webhook_service/gunicorn_conf.py`` and ``python -m workers`` set it up before the library is
imported; it is prometheus_client's own variable, not a Mergeway setting), values go to files
there and :func:`registry` aggregates them with prometheus_client's multiprocess collector.
Without it (tests, a single process) the default in-process registry is used.

Label values are kept to small fixed sets: an attacker who can send arbitrary event headers must
not be able to create unbounded time series.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess, values
from prometheus_client.core import REGISTRY, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    import redis

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

WEBHOOKS = Counter(
    "mergeway_webhooks",
    "Webhook deliveries received, by forge, event and what intake did with them.",
    ["forge", "event", "result"],
)
WEBHOOK_SECONDS = Histogram(
    "mergeway_webhook_duration_seconds",
    "Time to answer a webhook delivery (verify, parse, dedupe, enqueue).",
    ["forge"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
)
WEB_REFUSED = Counter(
    "mergeway_web_refused",
    "Requests the web service refused before they were whole: not sent within the deadline (timeout), "
    "headers past gunicorn's bounds (head_too_large), past the buffer budget (over_budget).",
    ["reason"],
)
JOBS = Counter(
    "mergeway_jobs",
    "Jobs finished by workers, by job kind and outcome (succeeded, failed, given_up: kept stopping its worker).",
    ["job", "outcome"],
)
JOB_SECONDS = Histogram(
    "mergeway_job_duration_seconds",
    "Wall time of a job run, by job kind and outcome.",
    ["job", "outcome"],
    buckets=(0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800),
)

DRIFT_OBJECTS = Gauge(
    "mergeway_drift_objects",
    "Objects drifted from the last applied commit at the last drift check, per repository and environment.",
    ["repository", "environment"],
    multiprocess_mode="mostrecent",
)


def multiprocess_enabled() -> bool:
    """Whether prometheus_client writes values to files: the mode it chose when it was imported.

    The library reads ``PROMETHEUS_MULTIPROC_DIR`` once, at import (the edges set it first); asking
    it, rather than the variable again, can never disagree with where the values really are.
    """
    return values.ValueClass is not values.MutexValue


class QueueDepthCollector(Collector):
    """``mergeway_queue_depth{queue}``: messages waiting per job queue, read from Redis at scrape time.

    Reading at scrape time costs one pipelined ``LLEN`` round trip per scrape and nothing per job,
    which is why it is a collector and not a gauge updated on every publish. A Redis error leaves
    the metric out of that scrape rather than failing the whole scrape: readiness reports Redis.
    """

    def __init__(self, client: redis.Redis, queues: Sequence[str]) -> None:
        self.client = client
        self.queues = tuple(queues)

    def collect(self) -> Iterable[Metric]:
        try:
            with self.client.pipeline(transaction=False) as pipe:
                for queue in self.queues:
                    pipe.llen(queue)
                depths = pipe.execute()
        except Exception as exc:
            log.warning("queue depth unavailable: %s", type(exc).__name__)
            return
        family = GaugeMetricFamily("mergeway_queue_depth", "Jobs waiting in each queue.", labels=["queue"])
        for queue, depth in zip(self.queues, depths, strict=True):
            family.add_metric([queue], float(depth))
        yield family


def registry(extra: Iterable[Collector] = ()) -> CollectorRegistry:
    """The registry to expose: multiprocess aggregate or the default one, plus ``extra`` collectors.

    A fresh registry per scrape in multiprocess mode is how prometheus_client documents it; the
    extra collectors are only added to that fresh one, so they never leak into the default registry.
    """
    if multiprocess_enabled():
        reg = CollectorRegistry()
        collector: Any = multiprocess.MultiProcessCollector
        collector(reg)
    else:
        reg = CollectorRegistry()
        reg.register(_DefaultRegistryProxy())
    for collector in extra:
        reg.register(collector)
    return reg


class _DefaultRegistryProxy(Collector):
    """Expose the default registry's metrics inside a per-scrape registry."""

    def collect(self) -> Iterable[Metric]:
        return REGISTRY.collect()


def render(extra: Iterable[Collector] = ()) -> bytes:
    """Prometheus text exposition of every metric (plus ``extra`` collectors)."""
    return generate_latest(registry(extra))


def mark_process_dead(pid: int) -> None:
    """Called by the process manager when a child exits, so its live gauges stop counting."""
    if multiprocess_enabled():
        mark: Any = multiprocess.mark_process_dead
        mark(pid)
