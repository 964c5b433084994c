"""Deploy on merge, end to end: merge in the forge simulator → webhook → worker → local cluster."""

from __future__ import annotations

import base64
import itertools
import os
import re
import signal
import subprocess
import threading

import pytest
import yaml
from kubernetes import client as k8s
from kubernetes import watch

from mergeway.jobs.applysets import applyset_for
from mergeway.kube.applyset import COMMIT_ANNOTATION, PART_OF_LABEL, ApplySet
from mergeway.repoconfig import Environment
from tests.conftest import SHARED
from tests.fixtures.cluster import SIMULATE_ANNOTATION
from tests.fixtures.e2e import Stack, slow_deployment
from tests.fixtures.services import ServiceProcess
from tests.fixtures.waiting import absent_as_none

pytestmark = pytest.mark.cluster
GUESTBOOK = SHARED / "manifests" / "kubernetes-examples" / "web" / "guestbook"
DEPLOY = "mergeway/deploy/staging"
MARKER = "<!-- mergeway:deploy:staging -->"


def guestbook_files() -> dict[str, str | None]:
    return {f"deploy/{p.name}": p.read_text() for p in sorted(GUESTBOOK.glob("*.yaml"))}


def merge(stack: Stack, repo, pr, method: str = "merge") -> str:
    stack.sim.merge(repo, pr, method=method)
    sha = stack.sim.pr(repo, pr.number).merge_commit_sha
    assert sha
    return sha


def applyset_of(stack: Stack, repo) -> ApplySet:
    env = Environment("staging", "deploy", "local", stack.namespace)
    return applyset_for(stack.sim.repository(repo), env)


def test_merging_the_guestbook_deploys_it(stack: Stack):
    repo = stack.repo()
    pr = stack.sim.open_pr(repo, "guestbook", files=guestbook_files(), title="Add the guestbook")
    sha = merge(stack, repo, pr)
    status = stack.status(repo, sha, DEPLOY)
    assert status.state == "success", status.description
    assert "6 added" in status.description
    body = stack.only_comment(repo, pr.number, MARKER).body
    assert "✅ Deployed" in body and "**6 added, 0 changed, 0 pruned, 0 unchanged**" in body

    api = stack.cluster.api_client()
    apps, core = k8s.AppsV1Api(api), k8s.CoreV1Api(api)
    applyset = applyset_of(stack, repo)
    for name in ("frontend", "redis-master", "redis-replica"):
        dep = apps.read_namespaced_deployment(name, stack.namespace)
        assert dep.metadata.labels[PART_OF_LABEL] == applyset.id
        assert any(m.manager == "mergeway" and m.operation == "Apply" for m in dep.metadata.managed_fields)
        assert dep.status.available_replicas == dep.spec.replicas
        assert any(c.type == "Available" and c.status == "True" for c in dep.status.conditions)
    for name in ("frontend", "redis-master", "redis-replica"):
        assert core.read_namespaced_service(name, stack.namespace).metadata.labels[PART_OF_LABEL] == applyset.id
    parent = core.read_namespaced_config_map(applyset.name, stack.namespace)
    assert parent.metadata.annotations[COMMIT_ANNOTATION] == sha


def test_removing_an_object_prunes_exactly_that_object(stack: Stack):
    repo = stack.repo(guestbook_files())
    core = k8s.CoreV1Api(stack.cluster.api_client())
    core.create_namespaced_service(
        stack.namespace,
        k8s.V1Service(
            metadata=k8s.V1ObjectMeta(name="hand-made"), spec=k8s.V1ServiceSpec(ports=[k8s.V1ServicePort(port=80)])
        ),
    )
    # An object its owners keep when it leaves Git (`mergeway.io/prune: disabled`, as Flux spells it).
    kept = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "kept", "annotations": {"mergeway.io/prune": "disabled"}},
        "data": {"a": "b"},
    }
    first = stack.sim.open_pr(repo, "touch", files={"README.md": "touched\n", "deploy/kept.yaml": yaml.safe_dump(kept)})
    assert stack.status(repo, merge(stack, repo, first), DEPLOY).state == "success"

    pr = stack.sim.open_pr(
        repo, "drop-replica-svc", files={"deploy/redis-replica-service.yaml": None, "deploy/kept.yaml": None}
    )
    preview = stack.status(repo, pr.head_sha, "mergeway/preview/staging")
    assert preview.description.startswith("0 to add, 0 to change, 1 to prune")
    sha = merge(stack, repo, pr)
    status = stack.status(repo, sha, DEPLOY)
    assert status.state == "success" and "1 pruned" in status.description
    names = {s.metadata.name for s in core.list_namespaced_service(stack.namespace).items}
    assert names == {"frontend", "redis-master", "hand-made"}
    body = stack.only_comment(repo, pr.number, MARKER).body
    assert f"`Service/{stack.namespace}/redis-replica`" in body
    assert core.read_namespaced_config_map("kept", stack.namespace).data == {"a": "b"}


def test_crd_and_custom_resource_apply_in_one_deploy(stack: Stack):
    group = f"{stack.namespace}.mergeway.test"
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"gadgets.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
                }
            ],
        },
    }
    gadget = {"apiVersion": f"{group}/v1", "kind": "Gadget", "metadata": {"name": "g1"}, "spec": {"color": "red"}}
    repo = stack.repo()
    pr = stack.sim.open_pr(
        repo, "gadgets", files={"deploy/crd.yaml": yaml.safe_dump(crd), "deploy/gadget.yaml": yaml.safe_dump(gadget)}
    )
    try:
        preview = stack.status(repo, pr.head_sha, "mergeway/preview/staging")
        assert preview.state == "success" and preview.description.startswith("2 to add")
        status = stack.status(repo, merge(stack, repo, pr), DEPLOY)
        assert status.state == "success", status.description
        custom = k8s.CustomObjectsApi(stack.cluster.api_client())
        assert custom.get_namespaced_custom_object(group, "v1", stack.namespace, "gadgets", "g1")["spec"] == {
            "color": "red"
        }
    finally:
        k8s.ApiextensionsV1Api(stack.cluster.api_client()).delete_custom_resource_definition(f"gadgets.{group}")


@pytest.mark.parametrize("forge", ["github", "gitlab"])
def test_bad_rollout_fails_and_names_the_deployment(stack: Stack, forge: str):
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "checkout"},
        "spec": {
            "replicas": 2,
            "progressDeadlineSeconds": 8,
            "selector": {"matchLabels": {"app": "checkout"}},
            "template": {
                "metadata": {"labels": {"app": "checkout"}, "annotations": {SIMULATE_ANNOTATION: "crash"}},
                "spec": {"containers": [{"name": "app", "image": "example.com/checkout:2"}]},
            },
        },
    }
    repo = stack.repo(forge=forge, name="acme/platform/shop" if forge == "gitlab" else "acme/shop")
    pr = stack.sim.open_pr(repo, "checkout", files={"deploy/checkout.yaml": yaml.safe_dump(deployment)})
    sha = merge(stack, repo, pr)
    status = stack.status(repo, sha, DEPLOY, timeout=90)
    assert status.state == ("failed" if forge == "gitlab" else "failure")
    assert f"Deployment/{stack.namespace}/checkout" in status.description
    body = stack.only_comment(repo, pr.number, MARKER).body
    assert "❌ Deploy failed" in body and "ProgressDeadlineExceeded" in body
    assert "`/rollback`" in body


def _applied_commits(
    stack: Stack, applyset: ApplySet, seen: list[str], errors: list[BaseException], stop: threading.Event
) -> None:
    """Record every commit the environment's ApplySet parent ever says was applied, in order; an
    exception ends the watch and is kept, so the test fails with it instead of timing out."""
    core = k8s.CoreV1Api(stack.cluster.api_client())
    try:
        while not stop.is_set():
            stream = watch.Watch()
            for event in stream.stream(
                core.list_namespaced_config_map,
                stack.namespace,
                field_selector=f"metadata.name={applyset.name}",
                timeout_seconds=2,
            ):
                commit = (event["object"].metadata.annotations or {}).get(COMMIT_ANNOTATION)
                if commit and (not seen or seen[-1] != commit):
                    seen.append(commit)
                if stop.is_set():
                    stream.stop()
    except BaseException as exc:
        errors.append(exc)


def is_ancestor(repo, older: str, newer: str) -> bool:
    proc = subprocess.run(
        ["git", "--git-dir", str(repo.git.path), "merge-base", "--is-ancestor", older, newer],
        capture_output=True,
        timeout=30,
    )
    return proc.returncode == 0


#: A final deploy status names the commit it deployed, or the newer one that superseded it.
REPORTED = re.compile(r"^(?:Deployed (?P<deployed>[0-9a-f]{12}):|Superseded by (?P<superseded>[0-9a-f]{12}),)")


# Its waits add up past the suite's 300 s: up to 240 s for the newest of 40 merges to be applied, then a
# final status per merge (each waited up to 120 s, usually already there).
@pytest.mark.timeout(600)
def test_back_to_back_merges_always_end_at_the_newest_commit(stack: Stack, redis_client):
    stack.workers.append(stack.services.worker(stack.env, concurrency=2))  # four deploys can race
    cm = 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  round: "{round}"\n'
    repo = stack.repo({"deploy/a.yaml": cm.format(name="a", round=0), "deploy/b.yaml": cm.format(name="b", round=0)})
    applyset = applyset_of(stack, repo)
    seen: list[str] = []
    errors: list[BaseException] = []
    stop = threading.Event()
    watcher = threading.Thread(target=_applied_commits, args=(stack, applyset, seen, errors, stop), daemon=True)
    watcher.start()
    core = k8s.CoreV1Api(stack.cluster.api_client())
    merges: list[tuple[int, str]] = []
    # The first half of the merges pile up for certain: the environment is held (as a long deploy
    # would hold it) until all of them are merged, so their deploys find newer commits on `main`.
    # The second half races the workers as merges come.
    held = redis_client.lock("mergeway:lock:deploy:local:staging", timeout=600, thread_local=False)
    assert held.acquire(blocking=False)
    try:
        for round_ in range(1, 21):
            if round_ == 11:
                held.release()
            a = stack.sim.open_pr(repo, f"a-{round_}", files={"deploy/a.yaml": cm.format(name="a", round=round_)})
            b = stack.sim.open_pr(repo, f"b-{round_}", files={"deploy/b.yaml": cm.format(name="b", round=round_)})
            merges.append((a.number, merge(stack, repo, a)))
            merges.append((b.number, merge(stack, repo, b)))
        head = stack.sim.head(repo)

        def newest_applied() -> bool:
            if errors:
                raise AssertionError(f"watching the ApplySet parent failed: {errors[0]!r}") from errors[0]
            return bool(seen) and seen[-1] == head

        stack.wait(newest_applied, timeout=240, message="the newest merge to be applied")
        assert core.read_namespaced_config_map("a", stack.namespace).data == {"round": "20"}
        assert core.read_namespaced_config_map("b", stack.namespace).data == {"round": "20"}
    finally:
        if held.owned():
            held.release()
        stop.set()
        watcher.join(timeout=10)
    for older, newer in itertools.pairwise(seen):
        assert is_ancestor(repo, older, newer), f"{newer[:12]} was applied after the newer {older[:12]}"

    # Every merge gets a final report naming a commit that includes it; merges that piled up say a
    # newer commit was deployed for them (the newest wins) instead of applying their own, older one.
    newer_for_older = 0
    for number, sha in merges:
        status = stack.status(repo, sha, DEPLOY, timeout=120)
        assert status.state == "success", f"#{number}: {status.description}"
        reported = REPORTED.match(status.description)
        assert reported, f"#{number}'s deploy status names no commit: {status.description!r}"
        short = reported["deployed"] or reported["superseded"]
        full = repo.git.resolve(short)
        assert full and is_ancestor(repo, sha, full), f"#{number} reports {short}, which does not include {sha[:12]}"
        if full != sha:
            newer_for_older += 1
            body = stack.only_comment(repo, number, MARKER).body
            assert "includes this merge" in body, f"#{number}'s comment does not say why another commit was deployed"
    assert newer_for_older >= 19, (
        f"only {newer_for_older} merges reported a newer commit; at least 19 of the 20 merged while held should"
    )


def _job_records(worker: ServiceProcess, job_id: str) -> list[str]:
    """The start/end messages the worker logged for one job, in order."""
    return [
        str(r["msg"])
        for r in worker.log_records()
        if r.get("job_id") == job_id and str(r.get("msg", "")).startswith("deploy job ")
    ]


def _pool_children(worker_pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(worker_pid)], capture_output=True, text=True, timeout=10).stdout
    return [int(pid) for pid in out.split()]


def test_killed_worker_deploy_is_redelivered_and_completes(stack: Stack):
    slow = slow_deployment("slow", "12s")
    repo = stack.repo()
    pr = stack.sim.open_pr(repo, "slow", files={"deploy/slow.yaml": yaml.safe_dump(slow)})
    sha = merge(stack, repo, pr)
    queued = stack.web.wait_log(lambda r: r.get("msg") == "queued deploy job", message="the deploy job queued")
    job_id = str(queued["job_id"])
    worker = stack.workers[0]
    apps = k8s.AppsV1Api(stack.cluster.api_client())
    # Wait until the deploy has applied and is waiting for the rollout (12 s), then kill the process running it.
    stack.wait(
        absent_as_none(lambda: apps.read_namespaced_deployment("slow", stack.namespace)),
        message="the deploy to apply the Deployment",
    )
    assert _job_records(worker, job_id) == ["deploy job started"], "the job was not running when it was killed"
    assert worker.process is not None
    children = _pool_children(worker.process.pid)
    assert children, "the worker has no pool processes"
    for pid in children:
        os.kill(pid, signal.SIGKILL)
    status = stack.status(repo, sha, DEPLOY, timeout=120)
    assert status.state == "success", status.description
    # The same job ran twice: killed mid-deploy (no outcome logged), then redelivered to completion.
    # The outcome line is logged after the status is posted: wait for it rather than race it.
    worker.wait_log(
        lambda r: r.get("job_id") == job_id and r.get("msg") == "deploy job succeeded",
        message="the redelivered job's outcome",
    )
    assert _job_records(worker, job_id) == ["deploy job started", "deploy job started", "deploy job succeeded"], (
        stack.log_tails()
    )
    dep = apps.read_namespaced_deployment("slow", stack.namespace)
    assert dep.status.available_replicas == 1


def _release_pr(stack: Stack):
    """A repository whose staging deploys from ``release``, and a pull request into that branch."""
    env = {"name": "staging", "path": "deploy", "cluster": "local", "namespace": stack.namespace, "branch": "release"}
    repo = stack.repo({"deploy/a.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n"}, environments=[env])
    stack.sim.commit(repo, "release", {"NOTES.md": "release branch\n"})
    return repo, stack.sim.open_pr(repo, "ship", files={"NOTES.md": "shipped\n"}, base="release")


def test_a_branch_deleted_while_the_deploy_waits_ends_in_a_failed_deploy_not_a_queued_one(stack: Stack, redis_client):
    """A git failure after the deploy was queued still ends in the environment's own outcome.

    The deploy waits for the environment (another deploy holds it), the target branch is deleted
    meanwhile, and under the lock the branch head cannot be read: the sticky comment goes from
    "queued" to "deploy failed" with the reason, and the status from pending to failure.
    """
    repo, pr = _release_pr(stack)
    held = redis_client.lock("mergeway:lock:deploy:local:staging", timeout=120, thread_local=False)
    assert held.acquire(blocking=False)
    try:
        sha = merge(stack, repo, pr)
        stack.wait(
            lambda: (s := stack.sim.latest_status(repo, sha, DEPLOY)) and s.state == "pending",
            message="the deploy to queue behind the held environment",
        )
        assert "Deploy queued" in stack.only_comment(repo, pr.number, MARKER).body
        stack.sim.delete_branch(repo, "release")
    finally:
        held.release()
    status = stack.status(repo, sha, DEPLOY)
    assert status.state == "failure", status.description
    assert "branch release does not exist" in status.description
    body = stack.only_comment(repo, pr.number, MARKER).body
    assert "❌ Deploy failed" in body and "branch release does not exist" in body, body
    assert "could not finish" not in body and "Traceback" not in body, body


def test_a_branch_deleted_before_the_deploy_runs_ends_in_a_failed_deploy(stack: Stack):
    """The target branch cannot be read at all: the deploy fails in the config's slot, saying why."""
    repo, pr = _release_pr(stack)
    preview = stack.status(repo, pr.head_sha, "mergeway/preview/staging")  # nothing in flight when the worker pauses
    assert preview.state == "success", preview.description
    worker = stack.workers[0].process
    assert worker is not None
    os.killpg(worker.pid, signal.SIGSTOP)  # the worker is busy elsewhere: the deploy waits in the queue
    try:
        sha = merge(stack, repo, pr)
        stack.sim.delete_branch(repo, "release")
    finally:
        os.killpg(worker.pid, signal.SIGCONT)
    status = stack.status(repo, sha, "mergeway/deploy/config")
    assert status.state == "failure", status.description
    assert "branch release does not exist" in status.description
    body = stack.only_comment(repo, pr.number, "<!-- mergeway:deploy:config -->").body
    assert "❌ Deploy failed" in body and "branch release does not exist" in body, body
    assert stack.sim.list_statuses(repo, sha, "mergeway/deploy") == [], "the job ended without its own outcome"


def test_a_helm_chart_deploys_with_the_values_files_the_environment_names(stack: Stack):
    """``helm: {values: [...]}`` in ``.mergeway.yaml``: the merge deploys what those values render, and
    a change to the values file alone is previewed and deployed."""
    chart = {
        "deploy/chart/Chart.yaml": "apiVersion: v2\nname: greeter\nversion: 0.1.0\n",
        "deploy/chart/values.yaml": "greeting: default\nreplicas: 1\n",
        "deploy/chart/templates/cm.yaml": (
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-greeting\n"
            "data:\n  greeting: {{ .Values.greeting | quote }}\n"
        ),
        "deploy/chart/templates/secret.yaml": (
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {{ .Release.Name }}-token\n"
            "stringData:\n  token: {{ .Values.token | quote }}\n"
        ),
        "values/staging.yaml": f"greeting: hello-staging\ntoken: {HELM_TOKENS[0]}\n",
    }
    env = {
        "name": "staging",
        "path": "deploy/chart",
        "cluster": "local",
        "namespace": stack.namespace,
        "helm": {"release": "shop", "values": ["values/staging.yaml"]},
    }
    repo = stack.repo(chart, environments=[env])
    first = stack.sim.open_pr(repo, "touch", files={"README.md": "touched\n"})
    assert stack.status(repo, merge(stack, repo, first), DEPLOY).state == "success"
    core = k8s.CoreV1Api(stack.cluster.api_client())
    assert core.read_namespaced_config_map("shop-greeting", stack.namespace).data == {"greeting": "hello-staging"}

    pr = stack.sim.open_pr(
        repo, "greet", files={"values/staging.yaml": f"greeting: hi-again\ntoken: {HELM_TOKENS[1]}\n"}
    )
    preview = stack.status(repo, pr.head_sha, "mergeway/preview/staging")
    assert preview.state == "success" and preview.description.startswith("0 to add, 2 to change"), preview.description
    body = stack.only_comment(repo, pr.number, "<!-- mergeway:preview:staging -->").body
    assert "hello-staging→hi-again" in body
    assert "+  token: '*** (after)'" in body  # the Helm-rendered Secret changes, its value masked
    deployed = stack.status(repo, merge(stack, repo, pr), DEPLOY)
    assert deployed.state == "success", deployed.description
    assert core.read_namespaced_config_map("shop-greeting", stack.namespace).data == {"greeting": "hi-again"}
    forms = [*HELM_TOKENS, *(base64.b64encode(t.encode()).decode() for t in HELM_TOKENS)]
    said = [c.body for n in (first.number, pr.number) for c in stack.sim.list_comments(repo, n)]
    said += [st.description for st in stack.sim.list_statuses(repo)] + [stack.logs()]
    assert not [form for form in forms for text in said if form in text]


HELM_TOKENS = ("helm-token-one-8d1e", "helm-token-two-2b7c")
