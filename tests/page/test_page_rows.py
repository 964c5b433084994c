"""What each row says when records and drift results get complicated, on the page, its JSON and ``mergeway status``.

Records are written with :class:`Deployments` (as workers write them) into the real Redis, and
read back through the real web service and the real command: a deploy in flight beside the one
running, a superseded deploy, drift results (drifted, in sync, a failed check, garbage), and a
record written before the page's fields existed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import redis

from mergeway.deployments import Deployment, Deployments, Keys
from tests.fixtures.services import ROOT, ServiceManager, WebProcess

REPO = "github:acme/shop"
A, B, C, D = "a" * 40, "b" * 40, "c" * 40, "d" * 40


def record(commit: str, pr: int, **fields: object) -> Deployment:
    return Deployment(REPO, "staging", commit, pr=pr, merged_by="carol", cluster="eu", namespace="shop", **fields)  # type: ignore[arg-type]


def rows(web: WebProcess) -> list[dict[str, object]]:
    status, answer = web.request("GET", "/api/environments")
    assert status == 200 and isinstance(answer, dict)
    return list(answer["environments"])


def status_lines(redis_url: str, *args: str) -> tuple[int, list[str]]:
    out = subprocess.run(
        [sys.executable, "-m", "mergeway.cli", "status", *args],
        cwd=ROOT,
        env={**os.environ, "REDIS_URL": redis_url},
        capture_output=True,
        text=True,
        timeout=60,
    )
    return out.returncode, out.stdout.splitlines()


def test_a_deploy_in_flight_is_listed_beside_what_runs_and_a_superseded_one_does_not_hide_it(
    services: ServiceManager, service_env: dict[str, str], redis_client: redis.Redis
):
    store, now = Deployments(redis_client), time.time()
    store.save(record(A, 1).enter("queued", at=now - 60).enter("applying", at=now - 59).enter("healthy", at=now - 50))
    store.save(record(B, 3).enter("queued", at=now - 5))  # waiting for the environment's lock
    store.save(record(D, 4).enter("queued", at=now - 4).enter("held", at=now - 3, reason="locked by dana"))
    store.save(record(C, 2).enter("queued", at=now - 30).enter("superseded", at=now - 4, reason="newer applied"))
    web = services.web({**service_env, "MERGEWAY_PAGE": "public"})

    (row,) = rows(web)
    assert (row["commit"], row["pr"], row["phase"]) == (A, 1, "healthy")
    pending = row["pending"]
    assert isinstance(pending, list)
    assert [(p["commit"], p["pr"], p["phase"], p["reason"]) for p in pending] == [
        (D, 4, "held", "locked by dana"),  # held before it ran: still waiting, not what runs
        (B, 3, "queued", ""),
    ]
    status, page = web.request("GET", "/")
    assert status == 200 and "bbbbbbb" in str(page) and "ccccccc" not in str(page)
    status, one = web.request("GET", "/api/environments/github/acme/shop/staging")
    assert status == 200 and isinstance(one, dict)
    assert [(d["commit"], d["phase"]) for d in one["history"]] == [
        (C, "superseded"),
        (D, "held"),
        (B, "queued"),
        (A, "healthy"),
    ]

    code, lines = status_lines(service_env["REDIS_URL"], "--repository", "acme/shop")
    assert code == 0, lines  # what runs is healthy
    assert lines[0] == f"{REPO} staging aaaaaaa #1 merged by carol: healthy"
    assert lines[1] == "  where:     eu/shop"
    flights = [line for line in lines if "in flight" in line]
    assert flights[0].startswith("  in flight: ddddddd held #4 since ") and flights[0].endswith(" (locked by dana)")
    assert flights[1].startswith("  in flight: bbbbbbb queued #3 since ")


def test_drift_results_show_when_they_exist_and_nothing_when_unreadable(
    services: ServiceManager, service_env: dict[str, str], redis_client: redis.Redis
):
    store, now = Deployments(redis_client), time.time()
    for env in ("staging", "prod", "qa", "dev", "demo"):
        store.save(record(A, 1)._replace(environment=env).enter("queued").enter("healthy"))
    key = "mergeway:drift:last:github:acme/shop:{}"
    redis_client.set(key.format("staging"), json.dumps({"objects": [{"kind": "Deployment"}] * 2, "checked_at": now}))
    redis_client.set(key.format("prod"), json.dumps({"objects": [], "checked_at": now, "error": "cluster unreachable"}))
    redis_client.set(key.format("qa"), "{not json")
    redis_client.set(key.format("dev"), json.dumps({"objects": 3}))
    web = services.web({**service_env, "MERGEWAY_PAGE": "public"})

    drift = {r["environment"]: r["drift"] for r in rows(web)}
    assert drift["staging"] == {"objects": 2, "checked_at": drift["staging"]["checked_at"], "error": ""}  # type: ignore[index]
    assert drift["prod"]["error"] == "cluster unreachable"  # type: ignore[index]
    assert (drift["qa"], drift["dev"], drift["demo"]) == (None, None, None)
    status, page = web.request("GET", "/")
    assert status == 200 and "2 objects drifted" in str(page) and "not checked" in str(page)
    _, lines = status_lines(service_env["REDIS_URL"], "--environment", "staging")
    assert "  drift:     2 object(s) drifted (checked " in "\n".join(lines)


def test_a_record_from_before_the_page_still_makes_a_row(
    services: ServiceManager, service_env: dict[str, str], redis_client: redis.Redis
):
    old = {  # what the previous release wrote: no title, cluster, namespace or repository address
        "repository": REPO,
        "environment": "staging",
        "commit": A,
        "pr": 9,
        "merged_by": "dana",
        "phases": [{"phase": "queued", "at": 1.0, "reason": ""}, {"phase": "failed", "at": 2.0, "reason": "boom"}],
        "counts": {"applied": 1, "pruned": 0, "unchanged": 0},
        "failures": [],
        "applied_commit": A,
        "healthy_commit": "",
    }
    redis_client.set(Keys.record(REPO, "staging", A), json.dumps(old))
    redis_client.lpush(Keys.history(REPO, "staging"), A)
    redis_client.sadd(Keys.index(), json.dumps([REPO, "staging"]))
    web = services.web({**service_env, "MERGEWAY_PAGE": "public"})

    (row,) = rows(web)
    assert (row["phase"], row["reason"], row["pr"], row["cluster"], row["commit_url"]) == ("failed", "boom", 9, "", "")
    status, page = web.request("GET", "/environments/github/acme/shop/staging")
    assert status == 200 and "boom" in str(page) and "—/default" in str(page)
    code, lines = status_lines(service_env["REDIS_URL"])
    assert code == 1 and lines[0] == f"{REPO} staging aaaaaaa #9 merged by dana: failed"


def test_links_go_to_the_forge_only_and_tokens_are_masked(
    services: ServiceManager, service_env: dict[str, str], redis_client: redis.Redis
):
    store = Deployments(redis_client)
    token = "ghp_" + "x" * 36
    gitlab = Deployment(
        "gitlab:acme/group/api",
        "prod",
        A,
        pr=5,
        title=f"use {token}",
        repository_url="https://gitlab.example/acme/group/api",
    )
    store.save(gitlab.enter("queued").enter("failed", reason=f"Secret/api/creds: token {token} refused"))
    hostile = Deployment(REPO, "staging", B, pr=6, repository_url="javascript:alert(1)")
    store.save(hostile.enter("queued").enter("healthy"))
    web = services.web({**service_env, "MERGEWAY_PAGE": "public"})

    by_repo = {r["repository"]: r for r in rows(web)}
    api = by_repo["gitlab:acme/group/api"]
    assert api["commit_url"] == f"https://gitlab.example/acme/group/api/-/commit/{A}"
    assert api["pr_url"] == "https://gitlab.example/acme/group/api/-/merge_requests/5"
    assert token not in json.dumps(api) and "***" in str(api["pr_title"]) and "***" in str(api["reason"])
    assert (by_repo[REPO]["commit_url"], by_repo[REPO]["pr_url"]) == ("", "")
    status, page = web.request("GET", "/environments/gitlab/acme/group/api/prod")
    assert status == 200 and token not in str(page)
    status, page = web.request("GET", "/")
    assert status == 200 and "javascript:" not in str(page) and token not in str(page)
