"""The simulator's merge queue: groups on temporary branches, statuses decide, merges in queue order.

Every ``merge_group`` delivery is also checked against ``@octokit/openapi-webhooks`` here (the
conformance suite checks all of the session's deliveries again at its end).
"""

from __future__ import annotations

import json

from mergeway.events import MergeGroup
from mergeway.intake import github as github_intake
from tests.conformance.oracle import webhooks
from tests.fixtures.forgesim import SimHarness
from tools.forgesim import SimPR, SimRepo
from tools.forgesim.mergequeue import MergeQueue

CHECK = "mergeway/preview/staging"


def two_prs(sim: SimHarness) -> tuple[SimRepo, SimPR, SimPR]:
    repo = sim.create_repo("github", "acme/queue", {"deploy/a.yaml": "a: 0\n", "deploy/b.yaml": "b: 0\n"})
    first = sim.open_pr(repo, "one", files={"deploy/a.yaml": "a: 1\n"}, title="One")
    second = sim.open_pr(repo, "two", files={"deploy/b.yaml": "b: 1\n"}, title="Two")
    return repo, first, second


def groups_sent(queue: MergeQueue) -> list[dict[str, object]]:
    payloads = [d.payload for d in queue.deliveries if d.event == "merge_group"]
    description = webhooks()
    for payload in payloads:
        name = description.name("merge_group", str(payload["action"]))
        assert description.check(name, payload) == [], payload
    return payloads


def file_at(repo: SimRepo, sha: str, path: str) -> str:
    return repo.git.git(["show", f"{sha}:{path}"])


def test_groups_stack_on_each_other_and_merge_in_queue_order(forge_sim: SimHarness) -> None:
    repo, first, second = two_prs(forge_sim)
    base = forge_sim.head(repo)
    queue = MergeQueue(forge_sim, required=(CHECK,))
    g1, g2 = queue.enqueue(repo, first), queue.enqueue(repo, second)
    assert g1.branch == f"gh-readonly-queue/main/pr-{first.number}-{base}"
    assert (g1.base_sha, g2.base_sha) == (base, g1.head_sha)
    # The second group holds both changes: what merging the queue up to it gives.
    assert (file_at(repo, g2.head_sha, "deploy/a.yaml"), file_at(repo, g2.head_sha, "deploy/b.yaml")) == (
        "a: 1\n",
        "b: 1\n",
    )
    assert repo.git.branch_head(g2.branch) == g2.head_sha
    requested = groups_sent(queue)
    assert [(p["action"], p["merge_group"]["head_sha"]) for p in requested] == [  # type: ignore[index]
        ("checks_requested", g1.head_sha),
        ("checks_requested", g2.head_sha),
    ]
    # Mergeway reads the delivery as the group it is.
    parsed = github_intake.parse("merge_group", "d", json.loads(queue.deliveries[1].body))
    assert isinstance(parsed, MergeGroup)
    assert (parsed.head_sha, parsed.base_sha, parsed.head_ref) == (g2.head_sha, g1.head_sha, g2.branch)

    forge = forge_sim.forge(repo)
    assert queue.process(repo) == []  # nothing reported yet: pending
    forge.set_status(g2.head_sha, "success", CHECK, "ok")
    assert queue.process(repo) == []  # the front group still waits
    forge.set_status(g1.head_sha, "success", CHECK, "ok")
    assert queue.process(repo) == [f"merged #{first.number}", f"merged #{second.number}"]

    assert forge_sim.head(repo) == g2.head_sha
    assert [forge_sim.pr(repo, n).merge_commit_sha for n in (first.number, second.number)] == [g1.head_sha, g2.head_sha]
    closed = [d.payload for d in forge_sim.deliveries("github", "pull_request") if d.action == "closed"]
    assert [(p["number"], p["pull_request"]["merged"]) for p in closed] == [(first.number, True), (second.number, True)]
    pushes = [d.payload for d in queue.deliveries if d.event == "push"]
    assert [(p["before"], p["after"]) for p in pushes] == [(base, g1.head_sha), (g1.head_sha, g2.head_sha)]
    description = webhooks()
    assert [description.check("push", p) for p in pushes] == [[], []]
    destroyed = [p for p in groups_sent(queue) if p["action"] == "destroyed"]
    assert [p["reason"] for p in destroyed] == ["merged", "merged"]
    assert repo.git.branch_head(g1.branch) is None and repo.git.branch_head(g2.branch) is None


def test_a_failed_check_dequeues_the_entry_and_rebuilds_the_ones_behind_it(forge_sim: SimHarness) -> None:
    repo, first, second = two_prs(forge_sim)
    queue = MergeQueue(forge_sim, method="squash", required=(CHECK,))
    g1, g2 = queue.enqueue(repo, first), queue.enqueue(repo, second)
    forge_sim.forge(repo).set_status(g1.head_sha, "failure", CHECK, "refused")
    assert queue.process(repo) == [f"dequeued #{first.number}"]
    [rebuilt] = queue.queue(repo)
    assert rebuilt.pr.number == second.number and rebuilt.head_sha != g2.head_sha
    assert file_at(repo, rebuilt.head_sha, "deploy/a.yaml") == "a: 0\n"  # without the dequeued change
    assert repo.git.git(["log", "-1", "--format=%s", rebuilt.head_sha]).strip() == f"Two (#{second.number})"
    sent = [(p["action"], p.get("reason"), p["merge_group"]["head_sha"]) for p in groups_sent(queue)]  # type: ignore[index]
    assert sent[2:] == [
        ("destroyed", "dequeued", g1.head_sha),
        ("destroyed", "invalidated", g2.head_sha),
        ("checks_requested", None, rebuilt.head_sha),
    ]
    assert forge_sim.pr(repo, first.number).state == "open"


def test_dequeue_by_hand(forge_sim: SimHarness) -> None:
    repo, first, _ = two_prs(forge_sim)
    queue = MergeQueue(forge_sim)
    group = queue.enqueue(repo, first)
    queue.dequeue(repo, first)
    assert queue.queue(repo) == []
    last = groups_sent(queue)[-1]
    assert (last["action"], last["reason"]) == ("destroyed", "dequeued")
    assert repo.git.branch_head(group.branch) is None
