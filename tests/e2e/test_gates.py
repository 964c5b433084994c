"""Gates through the real chain (forge simulator → web → Redis → worker → local cluster): environment
order (``after:``), ``/lock`` and ``/unlock``, and freeze windows; the newest waiting merge deploys
when a gate opens and older ones are marked superseded."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import redis
import yaml
from kubernetes import client as k8s

from mergeway.deployments import Deployment, Deployments
from mergeway.gates import Locks
from mergeway.jobs.applysets import owner_identity
from tests.fixtures.cluster import SIMULATE_ANNOTATION
from tests.fixtures.e2e import Stack, StackFactory
from tests.fixtures.redis_server import RedisServer
from tests.fixtures.services import ROOT, ServiceProcess, procfile_command
from tools.forgesim import SimRepo, SimStatus

pytestmark = pytest.mark.cluster


def cm(name: str, value: str) -> str:
    return f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  value: {value}\n"


def rollout(name: str, version: int, simulate: str = "") -> str:
    """A Deployment whose new pods never become ready with ``simulate: not-ready`` (tools/cluster)."""
    template: dict[str, Any] = {"labels": {"app": name}}
    if simulate:
        template["annotations"] = {SIMULATE_ANNOTATION: simulate}
    return yaml.safe_dump(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name},
            "spec": {
                "replicas": 1,
                "progressDeadlineSeconds": 8,
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": template,
                    "spec": {"containers": [{"name": "app", "image": f"example.com/{name}:{version}"}]},
                },
            },
        }
    )


def merge(stack: Stack, repo: SimRepo, branch: str, files: dict[str, str | None]) -> tuple[int, str]:
    pr = stack.sim.open_pr(repo, branch, files=files)
    stack.sim.merge(repo, pr)
    sha = stack.sim.pr(repo, pr.number).merge_commit_sha
    assert sha
    return pr.number, sha


def waiting_status(stack: Stack, repo: SimRepo, sha: str, context: str, *, timeout: float = 90.0) -> SimStatus:
    """The pending status of a deploy that waits at a gate ("Waiting: …")."""

    def found() -> SimStatus | None:
        status = stack.sim.latest_status(repo, sha, context)
        ok = status is not None and status.state == "pending" and status.description.startswith("Waiting")
        return status if ok else None

    return stack.wait(found, timeout=timeout, message=f"a waiting {context} status on {sha[:12]}")


def value(stack: Stack, name: str) -> str | None:
    core = k8s.CoreV1Api(stack.cluster.api_client())
    try:
        return str(core.read_namespaced_config_map(name, stack.namespace).data["value"])
    except k8s.ApiException as exc:
        if exc.status == 404:
            return None
        raise


def record(redis_client: redis.Redis, stack: Stack, repo: SimRepo, env: str, sha: str) -> Deployment | None:
    return Deployments(redis_client).get(owner_identity(stack.sim.repository(repo)), env, sha)


def command(stack: Stack, repo: SimRepo, number: int, body: str, author: str) -> None:
    stack.sim.comment(repo, number, body, author=author)


def status_cli(stack: Stack, repo: SimRepo) -> str:
    """``mergeway status`` for ``repo``, as an operator runs it."""
    out = subprocess.run(
        [sys.executable, "-m", "mergeway.cli", "status", "--repository", repo.full_name],
        cwd=ROOT,
        env={**os.environ, "REDIS_URL": stack.env["REDIS_URL"]},
        capture_output=True,
        text=True,
        timeout=60,
    )
    return out.stdout


def reply(stack: Stack, repo: SimRepo, number: int, contains: str) -> str:
    def found() -> str | None:
        return next((c.body for c in stack.marked(repo, number, "<!-- mergeway:command:") if contains in c.body), None)

    return stack.wait(found, message=f"a reply saying {contains!r} on #{number}")


# -- environment order ---------------------------------------------------------------------------------


def test_production_follows_staging_only_once_staging_is_healthy_on_the_same_merge(
    make_stack: StackFactory, redis_client: redis.Redis
):
    stack = make_stack(MERGEWAY_HEALTH_TIMEOUT_SECONDS="30")
    ns = stack.namespace
    envs = [
        # production first in the file: the order comes from `after`, not from the list.
        {"name": "production", "path": "deploy/production", "cluster": "local", "namespace": ns, "after": ["staging"]},
        {"name": "staging", "path": "deploy/staging", "cluster": "local", "namespace": ns},
    ]
    repo = stack.repo(environments=envs)

    # 1. Both deploy; production only after staging's record says healthy on this merge.
    _, first = merge(
        stack,
        repo,
        "v1",
        {"deploy/staging/app.yaml": rollout("web-staging", 1), "deploy/production/app.yaml": cm("prod", "v1")},
    )
    assert stack.status(repo, first, "mergeway/deploy/staging", timeout=120).state == "success"
    assert stack.status(repo, first, "mergeway/deploy/production", timeout=120).state == "success"
    staging = record(redis_client, stack, repo, "staging", first)
    production = record(redis_client, stack, repo, "production", first)
    assert staging is not None and production is not None
    assert staging.began("healthy") is not None and production.began("queued") is not None
    assert production.began("queued") >= staging.began("healthy"), (staging.phases, production.phases)  # type: ignore[operator]
    assert production.applied_commit == staging.healthy_commit == first
    assert value(stack, "prod") == "v1"

    # 2. Staging fails to become healthy: production does not deploy, and says what it waits for.
    number, failing = merge(
        stack,
        repo,
        "v2",
        {
            "deploy/staging/app.yaml": rollout("web-staging", 2, simulate="not-ready"),
            "deploy/production/app.yaml": cm("prod", "v2"),
        },
    )
    assert stack.status(repo, failing, "mergeway/deploy/staging", timeout=120).state == "failure"
    held = waiting_status(stack, repo, failing, "mergeway/deploy/production")
    assert "staging" in held.description and "failed" in held.description, held.description
    body = stack.only_comment(repo, number, "<!-- mergeway:deploy:production -->").body
    assert "Waiting" in body and "waiting for staging" in body and "failed" in body, body
    production = record(redis_client, stack, repo, "production", failing)
    assert production is not None and production.phase == "held" and "staging" in production.reason
    assert value(stack, "prod") == "v1", "production was deployed although staging failed"

    # 3. A newer merge fixes staging: production deploys it, and the waiting merge is superseded.
    _, fixed = merge(
        stack,
        repo,
        "v3",
        {"deploy/staging/app.yaml": rollout("web-staging", 3), "deploy/production/app.yaml": cm("prod", "v3")},
    )
    assert stack.status(repo, fixed, "mergeway/deploy/staging", timeout=120).state == "success"
    assert stack.status(repo, fixed, "mergeway/deploy/production", timeout=120).state == "success"
    assert value(stack, "prod") == "v3"
    replaced = stack.status(repo, failing, "mergeway/deploy/production")
    assert replaced.state == "success" and replaced.description.startswith("Superseded by"), replaced.description
    body = stack.only_comment(repo, number, "<!-- mergeway:deploy:production -->").body
    assert "Superseded" in body and fixed in body, body
    production = record(redis_client, stack, repo, "production", failing)
    assert production is not None and production.phase == "superseded" and fixed[:12] in production.reason


def test_a_follower_deploys_when_the_environment_it_follows_turns_healthy_in_another_job(
    stack: Stack, redis_client: redis.Redis
):
    ns = stack.namespace
    envs = [
        {"name": "staging", "path": "deploy/staging", "cluster": "local", "namespace": ns},
        {"name": "production", "path": "deploy/production", "cluster": "local", "namespace": ns, "after": ["staging"]},
    ]
    repo = stack.repo(environments=envs)
    locker = stack.sim.open_pr(repo, "notes", files={"NOTES.md": "x\n"})
    command(stack, repo, locker.number, "/lock staging smoke tests", "alice")
    reply(stack, repo, locker.number, "locked `staging`")

    number, sha = merge(
        stack, repo, "v1", {"deploy/staging/app.yaml": cm("stg", "v1"), "deploy/production/app.yaml": cm("prod", "v1")}
    )
    waiting_status(stack, repo, sha, "mergeway/deploy/staging")
    held = waiting_status(stack, repo, sha, "mergeway/deploy/production")
    assert "staging, which is held (locked by @alice: smoke tests)" in held.description, held.description
    assert value(stack, "stg") is None and value(stack, "prod") is None

    # The unlock's job deploys staging; staging turning healthy there releases production.
    command(stack, repo, locker.number, "/unlock staging", "alice")
    assert stack.status(repo, sha, "mergeway/deploy/staging", timeout=120).state == "success"
    assert stack.status(repo, sha, "mergeway/deploy/production", timeout=120).state == "success"
    assert (value(stack, "stg"), value(stack, "prod")) == ("v1", "v1")
    production = record(redis_client, stack, repo, "production", sha)
    assert production is not None and production.phase == "healthy"
    assert ("queued", "released: `staging` turned healthy") in [(e.phase, e.reason) for e in production.phases]
    body = stack.only_comment(repo, number, "<!-- mergeway:deploy:production -->").body
    assert "Deployed" in body, body


# -- locks ------------------------------------------------------------------------------------------------


def test_a_lock_holds_merges_and_unlock_deploys_the_newest_of_two(stack: Stack, redis_client: redis.Redis):
    repo = stack.repo({"deploy/app.yaml": cm("app", "v0")})
    locker = stack.sim.open_pr(repo, "notes", files={"NOTES.md": "incident\n"})
    command(stack, repo, locker.number, "/lock staging incident 42", "alice")
    reply(stack, repo, locker.number, "locked `staging`")
    repository = owner_identity(stack.sim.repository(repo))
    lock = Locks(redis_client).get(repository, "staging")
    assert lock is not None and (lock.by, lock.reason) == ("alice", "incident 42")

    older_pr, older = merge(stack, repo, "v1", {"deploy/app.yaml": cm("app", "v1")})
    held = waiting_status(stack, repo, older, "mergeway/deploy/staging")
    assert held.description == "Waiting: locked by @alice: incident 42", held.description
    body = stack.only_comment(repo, older_pr, "<!-- mergeway:deploy:staging -->").body
    assert "locked by @alice: incident 42" in body and "/unlock staging" in body, body
    _, newer = merge(stack, repo, "v2", {"deploy/app.yaml": cm("app", "v2")})
    waiting_status(stack, repo, newer, "mergeway/deploy/staging")
    assert value(stack, "app") is None, "a locked environment was deployed"
    waiting = record(redis_client, stack, repo, "staging", newer)
    assert waiting is not None and waiting.phase == "held" and waiting.reason == "locked by @alice: incident 42"
    out = status_cli(stack, repo)
    assert f"{repository} staging: locked by @alice: incident 42 (since " in out, out
    assert f"{repository} staging: 1 merge(s) waiting; newest {newer[:12]}: locked by @alice" in out, out
    # /help lists the lock in force.
    command(stack, repo, locker.number, "/help", "alice")
    help_body = stack.wait(
        lambda: next((c.body for c in stack.marked(repo, locker.number, "<!-- mergeway:help -->")), None),
        message="the /help reply",
    )
    assert "`staging` is locked by @alice since" in help_body and "incident 42" in help_body, help_body

    command(stack, repo, locker.number, "/unlock staging", "alice")
    deployed = stack.status(repo, newer, "mergeway/deploy/staging", timeout=120)
    assert deployed.state == "success" and newer[:12] in deployed.description, deployed.description
    assert value(stack, "app") == "v2"
    replaced = stack.status(repo, older, "mergeway/deploy/staging")
    assert replaced.state == "success" and replaced.description.startswith(f"Superseded by {newer[:12]}")
    body = stack.only_comment(repo, older_pr, "<!-- mergeway:deploy:staging -->").body
    assert "Superseded" in body and newer in body, body
    phases = record(redis_client, stack, repo, "staging", newer)
    assert phases is not None
    assert [(e.phase, e.reason) for e in phases.phases][:2] == [
        ("held", "locked by @alice: incident 42"),
        ("queued", "released: unlocked by @alice"),
    ]
    assert phases.phase == "healthy"
    assert Locks(redis_client).get(repository, "staging") is None


def test_a_readers_lock_is_refused(stack: Stack, redis_client: redis.Redis):
    repo = stack.repo({"deploy/app.yaml": cm("app", "v0")})
    stack.sim.set_permission(repo, "rita", "read")
    pr = stack.sim.open_pr(repo, "notes", files={"NOTES.md": "x\n"})
    command(stack, repo, pr.number, "/lock staging because", "rita")
    refusal = reply(stack, repo, pr.number, "only users with write access")
    assert "`/lock`" in refusal and "Nothing was locked" in refusal, refusal
    assert Locks(redis_client).all(owner_identity(stack.sim.repository(repo))) == {}
    _, sha = merge(stack, repo, "v1", {"deploy/app.yaml": cm("app", "v1")})
    assert stack.status(repo, sha, "mergeway/deploy/staging").state == "success"
    assert value(stack, "app") == "v1"


def test_a_lock_survives_a_redis_and_worker_restart(stack: Stack, redis_client: redis.Redis, redis_server: RedisServer):
    repo = stack.repo({"deploy/app.yaml": cm("app", "v0")})
    pr = stack.sim.open_pr(repo, "notes", files={"NOTES.md": "x\n"})
    command(stack, repo, pr.number, "/lock staging db failover", "alice")
    reply(stack, repo, pr.number, "locked `staging`")

    for worker in stack.workers:
        worker.stop()
    redis_server.stop()  # a clean restart: the append-only file keeps the lock
    redis_server.start()
    stack.workers = [stack.services.worker(stack.env, concurrency=2)]

    _, sha = merge(stack, repo, "v1", {"deploy/app.yaml": cm("app", "v1")})
    held = waiting_status(stack, repo, sha, "mergeway/deploy/staging")
    assert held.description == "Waiting: locked by @alice: db failover"
    assert value(stack, "app") is None
    command(stack, repo, pr.number, "/unlock staging", "alice")
    assert stack.status(repo, sha, "mergeway/deploy/staging", timeout=120).state == "success"
    assert value(stack, "app") == "v1"


# -- freeze windows ---------------------------------------------------------------------------------------


def start_beat(stack: Stack) -> ServiceProcess:
    """The scheduler (the Procfile's ``beat``): it sends the ``release`` ticks that end freezes."""
    beat = ServiceProcess("beat", procfile_command("beat"), stack.env, stack.services.workdir)
    beat.start()
    stack.services.started.append(beat)
    return beat


def test_a_merge_in_a_freeze_window_waits_and_deploys_when_it_ends(stack: Stack, redis_client: redis.Redis):
    paris = ZoneInfo("Europe/Paris")
    begins = dt.datetime.now(paris).replace(microsecond=0) + dt.timedelta(seconds=4)
    if (begins + dt.timedelta(seconds=16)).second == 0:
        # An end on a whole minute is written without seconds (``01:33 UTC``): keep the seconds to assert on.
        begins += dt.timedelta(seconds=1)
    ends = begins + dt.timedelta(seconds=16)
    window = {
        # Local wall-clock times read in the window's time zone (no offset written).
        "from": begins.replace(tzinfo=None).isoformat(sep=" "),
        "to": ends.replace(tzinfo=None).isoformat(sep=" "),
        "timezone": "Europe/Paris",
        "reason": "release freeze",
    }
    env = {"name": "staging", "path": "deploy", "cluster": "local", "namespace": stack.namespace, "freeze": [window]}
    repo = stack.repo({"deploy/app.yaml": cm("app", "v0")}, environments=[env])
    start_beat(stack)
    stack.wait(lambda: time.time() >= begins.timestamp(), message="the freeze window to begin", timeout=30)

    number, sha = merge(stack, repo, "v1", {"deploy/app.yaml": cm("app", "v1")})
    held = waiting_status(stack, repo, sha, "mergeway/deploy/staging")
    assert held.description.startswith("Waiting: frozen until") and "(release freeze)" in held.description
    assert ends.astimezone(dt.UTC).strftime("%H:%M:%S") in held.description, held.description
    body = stack.only_comment(repo, number, "<!-- mergeway:deploy:staging -->").body
    assert "--during-freeze" in body, body
    assert value(stack, "app") is None, "deployed inside a freeze window"

    deployed = stack.status(repo, sha, "mergeway/deploy/staging", timeout=120)
    assert deployed.state == "success", deployed.description
    assert value(stack, "app") == "v1"
    phases = record(redis_client, stack, repo, "staging", sha)
    assert phases is not None and phases.phase == "healthy"
    held_at, queued_at = phases.began("held"), phases.began("queued")
    assert held_at is not None and queued_at is not None
    assert held_at < ends.timestamp() <= queued_at, phases.phases
    assert ("queued", "released: the freeze ended") in [(e.phase, e.reason) for e in phases.phases]


def test_an_admin_deploys_during_a_freeze_and_previews_say_a_merge_falls_into_it(
    stack: Stack, redis_client: redis.Redis
):
    always = {"cron": "0 0 * * *", "duration": "1d", "timezone": "UTC", "reason": "code freeze"}
    env = {"name": "staging", "path": "deploy", "cluster": "local", "namespace": stack.namespace, "freeze": [always]}
    repo = stack.repo({"deploy/app.yaml": cm("app", "v0")}, environments=[env])
    pr = stack.sim.open_pr(repo, "v1", files={"deploy/app.yaml": cm("app", "v1")})
    preview = stack.status(repo, pr.head_sha, "mergeway/preview/staging")
    assert preview.state == "success", preview.description
    body = stack.only_comment(repo, pr.number, "<!-- mergeway:preview:staging -->").body
    assert "`staging` is frozen" in body and "(code freeze)" in body and "merging now waits" in body, body

    stack.sim.merge(repo, pr)
    sha = stack.sim.pr(repo, pr.number).merge_commit_sha
    assert sha
    waiting_status(stack, repo, sha, "mergeway/deploy/staging")
    command(stack, repo, pr.number, "/deploy staging --during-freeze", "alice")  # write access, not admin
    reply(stack, repo, pr.number, "only repository admins")
    assert value(stack, "app") is None

    command(stack, repo, pr.number, "/deploy staging --during-freeze", "acme")  # the owner: admin
    deployed = stack.status(repo, sha, "mergeway/deploy/staging", timeout=120)
    assert deployed.state == "success", deployed.description
    assert value(stack, "app") == "v1"
    phases = record(redis_client, stack, repo, "staging", sha)
    assert phases is not None and phases.phase == "healthy"
    reasons = [e.reason for e in phases.phases if e.phase == "queued"]
    assert any("deployed during the freeze by @acme" in r for r in reasons), phases.phases


def test_an_operators_freeze_holds_a_merge_the_repository_did_not_freeze(
    make_stack: StackFactory, redis_client: redis.Redis, tmp_path: Any
):
    now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
    policy = tmp_path / "policy.yaml"
    rules = [{"repositories": ["github:acme/*"], "clusters": ["local"], "namespaces": ["*"]}]
    window = {
        "repositories": ["github:acme/shop"],
        "clusters": ["local"],
        "from": (now - dt.timedelta(hours=1)).isoformat(),
        "to": (now + dt.timedelta(hours=2)).isoformat(),
        "reason": "company freeze",
    }
    policy.write_text(yaml.safe_dump({"rules": rules, "freeze": [window]}))
    stack = make_stack(MERGEWAY_POLICY=None, MERGEWAY_POLICY_FILE=str(policy))
    repo = stack.repo({"deploy/app.yaml": cm("app", "v0")})
    _, sha = merge(stack, repo, "v1", {"deploy/app.yaml": cm("app", "v1")})
    held = waiting_status(stack, repo, sha, "mergeway/deploy/staging")
    until = (now + dt.timedelta(hours=2)).strftime("%Y-%m-%d %H:%M")
    assert held.description == f"Waiting: frozen until {until} UTC (company freeze)", held.description
    assert value(stack, "app") is None
    waiting = record(redis_client, stack, repo, "staging", sha)
    assert waiting is not None and waiting.phase == "held" and "company freeze" in waiting.reason
