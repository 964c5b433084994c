"""The deployment record in real Redis: what a reader gets back, how much history stays, and that
writing it is bookkeeping a deploy never fails on."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import redis

from mergeway.deployments import HISTORY, Counts, Deployment, Deployments, Failure, Keys, describe
from mergeway.events import PullRequest, PullRequestMerged, Repository
from mergeway.jobs.record import Recorder
from tests.fixtures.redis_server import free_port

REPO = "github:acme/shop"


def test_a_record_round_trips_through_redis_with_its_phases_in_order(redis_client: redis.Redis) -> None:
    store = Deployments(redis_client)
    store.advance(REPO, "staging", "a" * 40, "queued", pr=7, merged_by="ada")
    store.advance(REPO, "staging", "a" * 40, "applying", applied_commit="b" * 40)
    failed = store.advance(
        REPO,
        "staging",
        "a" * 40,
        "failed",
        reason="Deployment/ns/web: ProgressDeadlineExceeded",
        counts=Counts(2, 1, 3),
        failures=(Failure("Deployment/ns/web", "ProgressDeadlineExceeded"),),
    )
    again = Deployments(redis.Redis.from_url(_url(redis_client)))  # another process's view
    read = again.get(REPO, "staging", "a" * 40)
    assert read == failed
    assert read is not None and [e.phase for e in read.phases] == ["queued", "applying", "failed"]
    assert (read.pr, read.merged_by, read.applied_commit, read.counts) == (7, "ada", "b" * 40, Counts(2, 1, 3))
    assert read.began("applying") is not None and read.began("healthy") is None
    assert json.loads(redis_client.get(Keys.record(REPO, "staging", "a" * 40)) or "")["phases"][0]["phase"] == "queued"
    text = "\n".join(describe(read))
    assert "failed: Deployment/ns/web: ProgressDeadlineExceeded" in text and "#7 merged by ada" in text


def test_each_environment_keeps_its_newest_records_only(redis_client: redis.Redis) -> None:
    store = Deployments(redis_client)
    commits = [f"{i:040x}" for i in range(HISTORY + 5)]
    for commit in commits:
        store.advance(REPO, "prod", commit, "queued")
    store.advance(REPO, "staging", commits[0], "queued")
    newest = [r.commit for r in store.history(REPO, "prod")]
    assert newest == commits[::-1][:HISTORY]
    assert store.get(REPO, "prod", commits[0]) is None  # dropped from the history, and deleted
    assert store.environments() == [(REPO, "prod"), (REPO, "staging")]
    assert [r.commit for r in store.latest()] == [commits[-1], commits[0]]


def test_an_unreachable_redis_never_fails_the_deploy_that_records() -> None:
    class Context:
        redis = redis.Redis(port=free_port(), socket_connect_timeout=0.5)

    pr = PullRequest(1, "t", "h" * 40, "f", "main", "ada", merge_commit_sha="m" * 40)
    event = PullRequestMerged(delivery_id="d", repo=Repository("github", "acme/shop", ""), pr=pr)
    recorder = Recorder(Context(), event)  # type: ignore[arg-type]  # only its Redis is used
    recorder.phase("staging", "m" * 40, "queued")  # logged, not raised


def _url(client: redis.Redis) -> str:
    kwargs = client.connection_pool.connection_kwargs
    return f"redis://{kwargs['host']}:{kwargs['port']}/{kwargs.get('db', 0)}"


def test_records_are_plain_json_values() -> None:
    record = Deployment(REPO, "staging", "c" * 40).enter("queued", at=1.0).enter("healthy", at=2.0)
    assert Deployment.from_json(record.to_json()) == record
    assert record.phase == "healthy" and record.began("queued") == 1.0


def test_reading_records_loads_neither_the_engine_nor_the_forge_clients() -> None:
    # The web process (and `mergeway status`) reads records; it must not pay for the job code.
    probe = (
        "import sys, mergeway.deployments\n"
        "print(sorted(m for m in sys.modules if m.startswith(('mergeway.kube', 'mergeway.jobs', 'github', 'gitlab',"
        " 'kubernetes', 'mergeway.config'))))"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", probe], cwd=root, capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "[]"
