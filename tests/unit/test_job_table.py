"""A job kind is one table entry: the worker's Celery app, its tasks and the scheduler all follow it;
and an environment-scoped event survives the JSON trip every job message takes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from mergeway.events import EnvironmentEvent, Repository, Tick, from_dict, to_dict
from mergeway.jobs.kinds import QUEUES

ROOT = Path(__file__).resolve().parents[2]


def test_an_environment_event_round_trips_through_json() -> None:
    event = EnvironmentEvent(
        delivery_id="schedule:drift:1",
        repo=Repository("gitlab", "g/p", "", project_id=7),
        environment="prod",
        reason="scheduled drift check",
    )
    data = json.loads(json.dumps(to_dict(event)))
    assert data["kind"] == "environment"
    assert from_dict(data) == event
    assert Tick.from_dict({"job": "tick", "at": 12.5}) == Tick("tick", 12.5)


def test_one_table_entry_gives_a_kind_its_queue_task_time_limits_and_schedule() -> None:
    probe = """
import json
import tests.scheduler.tick_job  # registers the `tick` kind: one table entry
from workers.celery_app import app
from workers import beat, tasks
conf = app.conf
print(json.dumps({
    "queues": sorted(q.name for q in conf.task_queues),
    "route": conf.task_routes["mergeway.tick"],
    "limits": conf.task_annotations["mergeway.tick"],
    "task": tasks.TASKS["tick"].name,
    "registered": "mergeway.tick" in app.tasks,
    "schedule": beat.schedule(),
}))
"""
    out = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={"PATH": "/usr/bin:/bin", "TEST_TICK_INTERVAL": "2"},
    )
    found = json.loads(out.stdout.splitlines()[-1])
    assert found["queues"] == sorted({*QUEUES.values(), "tick"})  # the shipped kinds' queues, and the new one
    assert found["route"] == {"queue": "tick"}
    assert found["limits"] == {"time_limit": 60.0, "soft_time_limit": 30.0}
    assert found["task"] == "mergeway.tick" and found["registered"]
    assert found["schedule"]["drift-schedule"]["schedule"] == 600.0  # MERGEWAY_DRIFT_INTERVAL_SECONDS' default
    assert {k: v for k, v in found["schedule"].items() if k not in ("drift-schedule", "release")} == {
        "tick": {
            "task": "mergeway.tick",
            "schedule": 2.0,
            "args": [{"job": "tick"}],
            "options": {"queue": "tick", "expires": 2.0},
        }
    }
    # The end of freeze windows is looked for every 10 s, on the deploy queue (it starts deploys).
    assert found["schedule"]["release"]["schedule"] == 10.0
    assert found["schedule"]["release"]["options"]["queue"] == "deploy"


def test_the_drift_interval_is_a_setting_and_zero_turns_the_scheduled_checks_off() -> None:
    from types import SimpleNamespace

    from workers import beat

    every_minute = beat.schedule(SimpleNamespace(drift_interval_seconds=60.0))
    assert every_minute["drift-schedule"]["schedule"] == 60.0
    assert every_minute["drift-schedule"]["options"] == {"queue": "drift-schedule", "expires": 60.0}
    assert "drift-schedule" not in beat.schedule(SimpleNamespace(drift_interval_seconds=0.0))
