"""A job kind the tests add: one table entry (below) plus its ``run``, and nothing else.

``python -m tests.scheduler.tick_job worker|beat [options]`` starts the Procfile's worker or beat
with this kind in the table, as a deployment that ships a new kind would.
"""

from __future__ import annotations

import json
import os
import sys

import redis

from mergeway.events import Tick
from mergeway.jobs.kinds import JobSpec, register
from tests.scheduler.tick_names import RUNS_KEY

INTERVAL = float(os.environ.get("TEST_TICK_INTERVAL", "1"))

register("tick", JobSpec(run="tests.scheduler.tick_job:run", time_limit=60.0, every=INTERVAL))


def run(tick: Tick) -> None:
    """Count this run: when the tick was due, and which worker ran it."""
    client = redis.Redis.from_url(os.environ["TEST_TICK_REDIS_URL"])  # the worker scrubs REDIS_URL
    worker = os.environ.get("TEST_WORKER_NAME", "")
    client.rpush(RUNS_KEY, json.dumps({"job": tick.job, "at": tick.at, "worker": worker}))


if __name__ == "__main__":
    from workers import beat
    from workers.__main__ import main as worker_main

    process, *rest = sys.argv[1:]
    sys.exit(worker_main(rest) if process == "worker" else beat.main(rest))
