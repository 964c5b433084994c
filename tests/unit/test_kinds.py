"""Every slash command starts a job that has a queue, a task and code to run; the web loads no job code."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from mergeway import jobs
from mergeway.commands import parse_command
from mergeway.events import COMMAND_NAMES, Command, CommentCommand, PullRequest, Repository
from mergeway.jobs.kinds import JOB_KINDS, QUEUES, TASK_NAMES, kind_of_task, route

REPO = Repository(forge="github", full_name="o/r", clone_url="")
PR = PullRequest(number=1, title="t", head_sha="", head_ref="", base_ref="", author="me")
ROOT = Path(__file__).resolve().parents[2]


def test_every_command_runs_a_job_on_that_jobs_queue() -> None:
    started = {}
    for name in COMMAND_NAMES:
        command = parse_command(f"/{name} staging")
        assert command == Command(name, ("staging",))
        event = CommentCommand(delivery_id="d", repo=REPO, pr=PR, command=command, comment_id=1, author="me")
        kind = route(event)
        module = f"mergeway.jobs.{str(kind).replace('-', '_')}"
        assert kind in JOB_KINDS and kind in QUEUES and jobs.handler(kind).__module__ == module
        started[name] = kind
    # Allowing held-back changes and the gate commands (/unlock and /deploy start deploys) wait behind
    # the environment's deploys, on the deploy queue.
    assert started == {
        "rollback": "rollback",
        "preview": "preview",
        "help": "help",
        "allow-destructive": "deploy",
        "lock": "deploy",
        "unlock": "deploy",
        "deploy": "deploy",
        "drift": "drift",
        # The drift issue's commands (routed the same for an IssueCommand; intake keeps them off pull requests).
        "revert-drift": "revert-drift",
        "adopt-drift": "adopt-drift",
    }


def test_a_task_name_reads_back_as_its_job_kind() -> None:
    assert {kind_of_task(TASK_NAMES[kind]) for kind in JOB_KINDS} == set(JOB_KINDS)
    assert kind_of_task("celery.backend_cleanup") is None


def test_the_web_service_loads_no_job_code() -> None:
    # Importing the job modules costs the web service most of a second and both forge clients.
    heavy = ("mergeway.kube", "mergeway.jobs.", "github", "gitlab")
    probe = (
        "import sys, webhook_service\n"
        f"loaded = sorted(m for m in sys.modules if m.startswith({heavy!r}) and m != 'mergeway.jobs.kinds')\n"
        "print(' '.join(loaded))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    ).stdout
    assert out.strip() == ""
