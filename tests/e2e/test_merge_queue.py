"""GitHub's merge queue, end to end: the simulator's queue sends ``merge_group`` deliveries to the web
service, the worker previews each group's head against the real cluster and reports
``mergeway/preview/<env>`` on it, ``destroyed`` cancels, and the queue's merges deploy in order.
GitLab merge trains: merge requests merged in train order deploy newest-wins.
"""

from __future__ import annotations

import itertools
import threading
from typing import Any

import pytest
from kubernetes import client as k8s

from tests.e2e.test_deploy import REPORTED, _applied_commits, applyset_of, is_ancestor
from tests.fixtures.e2e import Stack, StackFactory
from tools.forgesim import SimRepo
from tools.forgesim.mergequeue import MergeQueue

pytestmark = pytest.mark.cluster
PREVIEW = "mergeway/preview/staging"
DEPLOY = "mergeway/deploy/staging"
QUEUE_MARKER = "<!-- mergeway:merge-queue -->"
CM = 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  round: "{round}"\n'
#: The API server refuses it (a port above 65535): server-side validation, not Mergeway's.
BAD_SERVICE = """apiVersion: v1
kind: Service
metadata:
  name: broken
spec:
  ports:
  - port: 99999
"""


def configmaps(stack: Stack) -> SimRepo:
    return stack.repo({"deploy/a.yaml": CM.format(name="a", round=0), "deploy/b.yaml": CM.format(name="b", round=0)})


def logged(stack: Stack, text: str) -> bool:
    return any(text in str(r.get("msg", "")) for w in stack.workers for r in w.log_records())


def test_a_merge_group_gets_preview_statuses_on_its_head_and_a_summary_on_its_pull_requests(stack: Stack) -> None:
    repo = configmaps(stack)
    good = stack.sim.open_pr(repo, "good", files={"deploy/a.yaml": CM.format(name="a", round=1)}, title="Good")
    bad = stack.sim.open_pr(repo, "bad", files={"deploy/broken.yaml": BAD_SERVICE}, title="Bad")
    queue = MergeQueue(stack.sim, required=(PREVIEW,))

    first = queue.enqueue(repo, good)
    status = stack.status(repo, first.head_sha, PREVIEW)
    assert status.state == "success", status.description
    assert status.description.startswith("2 to add, 0 to change, 0 to prune")  # nothing deployed yet
    summary = stack.wait(
        lambda: next((c for c in stack.marked(repo, good.number, QUEUE_MARKER) if "✅ success" in c.body), None),
        message="the merge queue summary on the queued pull request",
    )
    assert first.branch in summary.body and first.head_sha in summary.body
    assert f"This group merges #{good.number} (in this order)." in summary.body

    # The second group holds both pull requests: the invalid Service makes its preview fail.
    second = queue.enqueue(repo, bad)
    status = stack.status(repo, second.head_sha, PREVIEW)
    assert status.state == "failure", status.description
    assert status.description.startswith("1 object(s) rejected by the API server")
    for number in (good.number, bad.number):
        body = stack.wait(
            lambda n=number: next((c.body for c in stack.marked(repo, n, QUEUE_MARKER) if "❌" in c.body), None),
            message=f"the failed group's summary on #{number}",
        )
        assert f"This group merges #{good.number}, #{bad.number} (in this order)." in body

    # The queue acts on the statuses: the good group merges (and deploys), the bad entry leaves.
    assert queue.process(repo) == [f"merged #{good.number}", f"dequeued #{bad.number}"]
    deployed = stack.status(repo, first.head_sha, DEPLOY)
    assert deployed.state == "success", deployed.description
    core = k8s.CoreV1Api(stack.cluster.api_client())
    assert core.read_namespaced_config_map("a", stack.namespace).data == {"round": "1"}
    assert stack.sim.head(repo) == first.head_sha  # nothing of the refused change reached main


def only_workers(stack: Stack, make_queues: list[str]) -> None:
    """Replace the stack's worker (every queue) by one that consumes only ``make_queues``."""
    for worker in stack.workers:
        worker.stop()
    stack.workers[:] = [stack.services.worker(stack.env, queues=make_queues, concurrency=2)]


def test_a_group_destroyed_before_its_preview_starts_is_never_previewed(make_stack: StackFactory) -> None:
    stack = make_stack()
    only_workers(stack, ["merge_group_cancel"])  # the group's preview waits on its queue
    repo = configmaps(stack)
    pr = stack.sim.open_pr(repo, "change", files={"deploy/a.yaml": CM.format(name="a", round=1)})
    queue = MergeQueue(stack.sim)
    group = queue.enqueue(repo, pr)
    queue.dequeue(repo, pr)
    stack.wait(lambda: logged(stack, "left the queue: dequeued"), message="the cancel job to mark the group")

    stack.workers.append(stack.services.worker(stack.env, queues=["merge_group"]))
    stack.wait(lambda: logged(stack, "before its preview started: skipped"), message="the preview job to skip")
    assert stack.sim.list_statuses(repo, group.head_sha) == []
    assert stack.marked(repo, pr.number, QUEUE_MARKER) == []


def test_a_group_destroyed_during_its_preview_ends_with_cancelled_statuses(make_stack: StackFactory) -> None:
    stack = make_stack()
    only_workers(stack, ["merge_group", "merge_group_cancel"])  # no PR previews: only the group reads pulls
    repo = configmaps(stack)
    pr = stack.sim.open_pr(repo, "change", files={"deploy/a.yaml": CM.format(name="a", round=1)})
    # The preview is held where it looks the group's pull requests up, until the group is destroyed.
    held = stack.sim.inject("github", method="GET", path=rf"/pulls/{pr.number}$", hold=True)
    queue = MergeQueue(stack.sim)
    group = queue.enqueue(repo, pr)
    stack.wait(lambda: held.hits > 0, message="the group's preview to reach the forge")
    queue.dequeue(repo, pr)
    stack.wait(lambda: logged(stack, "left the queue: dequeued"), message="the cancel job to mark the group")
    held.release()

    status = stack.status(repo, group.head_sha, PREVIEW)
    assert (status.state, status.description) == ("error", "Merge group left the queue: preview cancelled (dequeued)")
    body = stack.wait(
        lambda: next((c.body for c in stack.marked(repo, pr.number, QUEUE_MARKER) if "cancelled" in c.body), None),
        message="the cancelled summary on the pull request",
    )
    assert "This group was removed from the queue: its preview was cancelled." in body


@pytest.mark.timeout(400)
def test_the_queue_merging_two_pull_requests_deploys_in_order_with_the_newest_live(stack: Stack) -> None:
    repo = configmaps(stack)
    applyset = applyset_of(stack, repo)
    seen: list[str] = []
    errors: list[BaseException] = []
    stop = threading.Event()
    watcher = threading.Thread(target=_applied_commits, args=(stack, applyset, seen, errors, stop), daemon=True)
    watcher.start()
    try:
        one = stack.sim.open_pr(repo, "one", files={"deploy/a.yaml": CM.format(name="a", round=1)}, title="One")
        two = stack.sim.open_pr(repo, "two", files={"deploy/b.yaml": CM.format(name="b", round=1)}, title="Two")
        queue = MergeQueue(stack.sim, required=(PREVIEW,))
        groups = [queue.enqueue(repo, one), queue.enqueue(repo, two)]
        for group in groups:
            assert stack.status(repo, group.head_sha, PREVIEW).state == "success"
        # Both groups pass: the queue merges them back to back, one closed delivery each, in order.
        assert queue.process(repo) == [f"merged #{one.number}", f"merged #{two.number}"]
        head = stack.sim.head(repo)
        assert head == groups[1].head_sha

        def newest_applied() -> bool:
            if errors:
                raise AssertionError(f"watching the ApplySet parent failed: {errors[0]!r}") from errors[0]
            return bool(seen) and seen[-1] == head

        stack.wait(newest_applied, timeout=120, message="the newest merge to be applied")
        for group, pr in zip(groups, (one, two), strict=True):
            status = stack.status(repo, group.head_sha, DEPLOY)
            assert status.state == "success", f"#{pr.number}: {status.description}"
            reported = REPORTED.match(status.description)
            assert reported, status.description
            short = reported["deployed"] or reported["superseded"]
            full = repo.git.resolve(short)
            assert full and is_ancestor(repo, group.head_sha, full)
    finally:
        stop.set()
        watcher.join(timeout=10)
    core = k8s.CoreV1Api(stack.cluster.api_client())
    assert core.read_namespaced_config_map("a", stack.namespace).data == {"round": "1"}
    assert core.read_namespaced_config_map("b", stack.namespace).data == {"round": "1"}
    for older, newer in itertools.pairwise(seen):
        assert is_ancestor(repo, older, newer), f"{newer[:12]} was applied after the newer {older[:12]}"


def test_gitlab_merge_requests_merged_in_train_order_deploy_newest_wins(stack: Stack) -> None:
    """A merge train merges its merge requests one after the other: each is an ordinary merge event."""
    repo = stack.repo(
        {"deploy/a.yaml": CM.format(name="a", round=0), "deploy/b.yaml": CM.format(name="b", round=0)},
        forge="gitlab",
        name="acme/train",
    )
    applyset = applyset_of(stack, repo)
    seen: list[str] = []
    errors: list[BaseException] = []
    stop = threading.Event()
    watcher = threading.Thread(target=_applied_commits, args=(stack, applyset, seen, errors, stop), daemon=True)
    watcher.start()
    merged: list[tuple[int, Any]] = []
    try:
        trains = [
            stack.sim.open_pr(repo, f"train-{i}", files={f"deploy/{n}.yaml": CM.format(name=n, round=i)})
            for i, n in ((1, "a"), (2, "b"), (3, "c"))
        ]
        for mr in trains:  # in train order, without waiting for the deploys in between
            merged.append((mr.number, stack.sim.merge(repo, mr)))
        head = stack.sim.head(repo)
        stack.wait(lambda: bool(seen) and seen[-1] == head and not errors, timeout=120, message="the newest merge")
    finally:
        stop.set()
        watcher.join(timeout=10)
    core = k8s.CoreV1Api(stack.cluster.api_client())
    for name, round_ in (("a", "1"), ("b", "2"), ("c", "3")):
        assert core.read_namespaced_config_map(name, stack.namespace).data == {"round": round_}
    for older, newer in itertools.pairwise(seen):
        assert is_ancestor(repo, older, newer), f"{newer[:12]} was applied after the newer {older[:12]}"
    for number, mr in merged:
        sha = mr.merge_commit_sha or mr.squash_commit_sha or mr.head_sha
        assert stack.status(repo, sha, DEPLOY).state == "success", f"!{number}"


def test_a_group_preview_that_ends_without_its_outcome_leaves_no_pending_status(stack: Stack) -> None:
    """The group has no pull request to explain it on: its pending statuses become errors that say why."""
    repo = configmaps(stack)
    pr = stack.sim.open_pr(repo, "change", files={"deploy/a.yaml": CM.format(name="a", round=1)})
    stack.status(repo, pr.head_sha, PREVIEW)  # the pull request's own preview is done
    # The group's summary comment cannot be written: the job fails after its statuses went pending.
    stack.sim.inject("github", status=404, method="POST", path=rf"/issues/{pr.number}/comments$", times=20)
    group = MergeQueue(stack.sim).enqueue(repo, pr)
    status = stack.status(repo, group.head_sha, PREVIEW)
    assert status.state == "error"
    assert status.description.startswith("Not finished:"), status.description


def test_a_group_holding_a_fork_pull_request_is_not_dry_run(stack: Stack) -> None:
    """The fork rule of pull request previews holds for the queue: the group carries the fork's content."""
    repo = configmaps(stack)
    ours = stack.sim.open_pr(repo, "ours", files={"deploy/a.yaml": CM.format(name="a", round=1)}, title="Ours")
    fork = stack.sim.open_pr(
        repo, "theirs", files={"deploy/b.yaml": CM.format(name="b", round=1)}, title="Theirs", fork_owner="mallory"
    )
    queue = MergeQueue(stack.sim)
    trusted, untrusted = queue.enqueue(repo, ours), queue.enqueue(repo, fork)
    assert stack.status(repo, trusted.head_sha, PREVIEW).state == "success"
    status = stack.status(repo, untrusted.head_sha, PREVIEW)
    assert status.state == "error"
    assert status.description.startswith("Not previewed: pull requests from forks are not dry-run"), status.description
