"""Periodic jobs: a kind added by one table entry runs once per interval, whatever the replicas.

Two beat processes (one holds RedBeat's lock in Redis, the other waits for it) and two workers,
all started as the Procfile starts them but with the test's ``tick`` kind in the table
(:mod:`tests.scheduler.tick_job`). Every run is counted in Redis; the test waits for enough runs,
then checks that each interval was sent once and run once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from typing import Any

import redis

from tests.fixtures.services import ROOT, ServiceManager, ServiceProcess
from tests.fixtures.waiting import wait_for
from tests.scheduler.tick_names import RUNS_KEY
from workers.beat import ALIVE_KEY, LEADER_KEY

INTERVAL = 1.0
RUNS = 8


def start(services: ServiceManager, name: str, args: list[str], env: dict[str, str]) -> ServiceProcess:
    argv = [sys.executable, "-m", "tests.scheduler.tick_job", *args]
    process = ServiceProcess(name, argv, {**env, "TEST_WORKER_NAME": name}, services.workdir)
    process.start()
    services.started.append(process)
    return process


def runs(client: redis.Redis) -> list[dict[str, Any]]:
    return [json.loads(raw) for raw in client.lrange(RUNS_KEY, 0, -1)]


def test_a_new_periodic_kind_runs_once_per_interval_across_two_beats_and_two_workers(
    services: ServiceManager, service_env: dict[str, str], redis_client: redis.Redis
) -> None:
    env = {**service_env, "TEST_TICK_INTERVAL": str(INTERVAL), "MERGEWAY_BEAT_LOCK_SECONDS": "5"}
    env["TEST_TICK_REDIS_URL"] = env["REDIS_URL"]
    workers = [
        start(
            services,
            f"tick-worker-{i}",
            [
                "worker",
                "--queues",
                "tick",
                "--concurrency",
                "1",
                "--hostname",
                f"tick-worker-{i}@%h",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ],
            env,
        )
        for i in (1, 2)
    ]
    for worker in workers:
        worker.wait_log(lambda r: str(r.get("msg", "")).endswith(" ready."), timeout=60, message="worker ready")
    beats = [start(services, f"tick-beat-{i}", ["beat"], env) for i in (1, 2)]

    done = wait_for(
        lambda: (found := runs(redis_client)) and len(found) >= RUNS and found,
        timeout=60,
        message=f"{RUNS} runs of the tick job",
        detail=lambda: "\n".join(p.logs()[-3000:] for p in [*beats, *workers]),
    )
    assert all(b.running for b in beats), "a waiting beat replica must keep waiting, not exit"

    assert_once_per_interval(done)

    # Liveness: each replica's heartbeat is fresh, and `mergeway-beat --check` says so; one leader.
    host = redis_client.get(LEADER_KEY)
    assert host, "the replica holding the lock names itself"
    assert redis_client.exists(ALIVE_KEY.format(host=host.decode()))
    check = subprocess.run(
        [sys.executable, "-m", "workers.beat", "--check"], cwd=ROOT, env=env, capture_output=True, timeout=60
    )
    assert check.returncode == 0, check.stderr

    # The sender dies without releasing its lock: the other replica takes over once the lock expires,
    # and carries on from the schedule's state in Redis (no interval sent twice, none replayed).
    sender = next(b for b in beats if any(r.get("msg") == "beat: Acquired lock" for r in b.log_records()))
    waiting = next(b for b in beats if b is not sender)
    assert sender.process is not None
    os.killpg(sender.process.pid, signal.SIGKILL)
    waiting.wait_log(lambda r: r.get("msg") == "beat: Acquired lock", timeout=30, message="the lock taken over")
    before = len(runs(redis_client))
    after = wait_for(
        lambda: (found := runs(redis_client)) and len(found) >= before + 3 and found,
        timeout=30,
        message="runs sent by the replica that took over",
    )
    assert_once_per_interval(after)


def assert_once_per_interval(done: list[dict[str, Any]]) -> None:
    """Each tick sent was run once, and no two ticks were sent within one interval."""
    due = [r["at"] for r in done]
    assert all(r["job"] == "tick" for r in done)
    # Run once: every tick sent was run by exactly one of the two workers.
    assert len(due) == len(set(due)), f"a tick ran twice: {done}"
    # Sent once per interval: never two sends (two beats) within one interval.
    gaps = [later - earlier for earlier, later in zip(sorted(due), sorted(due)[1:], strict=False)]
    assert min(gaps) >= INTERVAL * 0.9, f"two ticks in one interval: {gaps}"
    slots = {round((at - min(due)) / INTERVAL) for at in due}
    assert len(slots) == len(due)
