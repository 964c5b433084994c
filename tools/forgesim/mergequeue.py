"""GitHub's merge queue, enough of it to drive Mergeway's ``merge_group`` handling end to end.

GitHub lets a repository require a merge queue on a branch. A pull request is *enqueued* (GitHub's
API for that is the GraphQL mutation ``enqueuePullRequest``: there is no REST endpoint, and Mergeway
calls none, so tests enqueue through :meth:`MergeQueue.enqueue`). For each entry the queue builds a
temporary branch ``gh-readonly-queue/<base>/pr-<n>-<sha>`` (``sha``: the commit the entry builds on)
holding the base branch plus every pull request queued before it and this one, one commit each (a
merge commit "Merge pull request #n from …", or a squash "Title (#n)"), then sends ``merge_group``
``checks_requested`` for the entry's head commit. Checks report as commit statuses on that SHA (the
simulator's ordinary ``POST /repos/{o}/{r}/statuses/{sha}``).

:meth:`MergeQueue.process` does what GitHub does when the statuses change: the front entry whose
required statuses are all ``success`` is merged (the base branch is fast-forwarded to its head and
a ``push`` sent for it, its pull request becomes merged with its own commit in the chain as
``merge_commit_sha``, ``pull_request`` ``closed`` and ``merge_group`` ``destroyed``/``merged`` are sent, the temporary
branch deleted); a front entry with a failed required status is removed (``destroyed``/``dequeued``)
and every entry after it is rebuilt without it (``destroyed``/``invalidated``, then a new group and
``checks_requested``). :meth:`MergeQueue.dequeue` removes an entry by hand the same way.

Payloads follow ``@octokit/openapi-webhooks`` (``webhook-merge-group-checks-requested`` and
``-destroyed``); the conformance suite validates every delivery sent.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from tools.forgesim.state import SimPR, SimRepo, now

if TYPE_CHECKING:
    from tools.forgesim.server import ForgeSim
    from tools.forgesim.webhooks import Delivery

Method = Literal["merge", "squash"]
Reason = Literal["merged", "invalidated", "dequeued"]


@dataclass
class SimGroup:
    """One queue entry: its pull request, the group's commits and its temporary branch."""

    repo: SimRepo
    pr: SimPR
    base_ref: str
    base_sha: str
    head_sha: str
    branch: str
    #: The pull requests whose commits the group holds, oldest first (the ones ahead of it, then its own).
    numbers: list[int] = field(default_factory=list)
    state: Literal["queued", "merged", "destroyed"] = "queued"

    @property
    def head_ref(self) -> str:
        return f"refs/heads/{self.branch}"


class MergeQueue:
    """The merge queues of one simulator (one per repository and base branch)."""

    def __init__(self, sim: ForgeSim, *, method: Method = "merge", required: tuple[str, ...] = ()) -> None:
        self.sim = sim
        self.method: Method = method
        #: The status contexts a group needs (``success``) to merge; none: every status on it.
        self.required = required
        self.entries: dict[tuple[str, str], list[SimGroup]] = {}
        self.deliveries: list[Delivery] = []
        self._lock = threading.RLock()

    # -- what tests do -------------------------------------------------------------------------------

    def enqueue(self, repo: SimRepo, pr: SimPR | int, *, by: str | None = None) -> SimGroup:
        """Add the pull request to its base branch's queue; sends ``checks_requested`` for its group."""
        pr = self.sim.pr(repo, pr) if isinstance(pr, int) else pr
        if repo.forge != "github":
            raise ValueError("merge queues are simulated for GitHub; GitLab's merge trains send no such event")
        with self._lock:
            queue = self.entries.setdefault((repo.full_name, pr.base_ref), [])
            if pr.state != "open" or any(g.pr is pr for g in queue):
                raise ValueError(f"#{pr.number} is {pr.state} or already queued")
            group = self._build(repo, pr, queue[-1] if queue else None, by or repo.owner)
            queue.append(group)
        return group

    def dequeue(self, repo: SimRepo, pr: SimPR | int) -> None:
        """Remove the pull request from its queue by hand: ``destroyed``/``dequeued``; later groups rebuilt."""
        pr = self.sim.pr(repo, pr) if isinstance(pr, int) else pr
        with self._lock:
            queue = self.entries.get((repo.full_name, pr.base_ref), [])
            index = next(i for i, g in enumerate(queue) if g.pr is pr)
            self._remove(repo, queue, index, "dequeued")

    def process(self, repo: SimRepo, base: str | None = None) -> list[str]:
        """Act on the front of the queue as GitHub does when statuses change; what happened, in order.

        Repeats while the front entry is decided: ``"merged #n"``, ``"dequeued #n"``; stops at one
        whose required statuses are still pending (or an empty queue).
        """
        base = base or repo.default_branch
        happened: list[str] = []
        with self._lock:
            queue = self.entries.get((repo.full_name, base), [])
            while queue:
                front = queue[0]
                verdict = self.verdict(front)
                if verdict == "pending":
                    break
                if verdict == "failure":
                    self._remove(repo, queue, 0, "dequeued")
                    happened.append(f"dequeued #{front.pr.number}")
                    continue
                self._merge(repo, queue.pop(0))
                happened.append(f"merged #{front.pr.number}")
        return happened

    def verdict(self, group: SimGroup) -> Literal["success", "failure", "pending"]:
        """The group's required statuses together: any failed → failure, all success → success."""
        statuses = self.sim.list_statuses(group.repo, group.head_sha)
        latest: dict[str, str] = {}
        for status in statuses:  # oldest first: the last one per context wins
            latest[status.context] = status.state
        wanted = self.required or tuple(latest)
        states = [latest.get(context, "pending") for context in wanted]
        if any(state in ("failure", "error") for state in states):
            return "failure"
        if states and all(state == "success" for state in states):
            return "success"
        return "pending"

    def queue(self, repo: SimRepo, base: str | None = None) -> list[SimGroup]:
        with self._lock:
            return list(self.entries.get((repo.full_name, base or repo.default_branch), []))

    # -- the queue's own work --------------------------------------------------------------------------

    def _build(self, repo: SimRepo, pr: SimPR, before: SimGroup | None, by: str) -> SimGroup:
        """The entry's group: ``before``'s head (or the base branch's) plus ``pr``, on a temporary branch."""
        onto = before.head_sha if before is not None else self.sim.head(repo, pr.base_ref)
        branch = f"gh-readonly-queue/{pr.base_ref}/pr-{pr.number}-{onto}"
        if self.method == "merge":
            message = f"Merge pull request #{pr.number} from {repo.owner}/{pr.head_ref}\n\n{pr.title}"
        else:
            message = f"{pr.title} (#{pr.number})"
        with repo.git.lock:
            repo.git.update_ref(f"refs/heads/{branch}", onto)
            head, _ = repo.git.merge(branch, pr.head_sha, self.method, message, self.sim._author("github", by))
        numbers = [*(before.numbers if before is not None else []), pr.number]
        group = SimGroup(repo, pr, pr.base_ref, onto, head, branch, numbers)
        self._send(group, "checks_requested", by)
        return group

    def _remove(self, repo: SimRepo, queue: list[SimGroup], index: int, reason: Reason) -> None:
        """Drop entry ``index`` (``reason``); the entries after it are rebuilt on what is left."""
        removed = queue.pop(index)
        self._destroy(removed, reason)
        later = queue[index:]
        del queue[index:]
        for group in later:
            self._destroy(group, "invalidated")
        for group in later:
            queue.append(self._build(repo, group.pr, queue[-1] if queue else None, repo.owner))

    def _merge(self, repo: SimRepo, group: SimGroup) -> None:
        """Fast-forward the base to the group's head; the pull request is merged with its own commit."""
        pr = self.sim.pr(repo, group.pr.number)
        with repo.git.lock:
            old = self.sim.head(repo, group.base_ref)
            if not repo.git.is_ancestor(old, group.head_sha):
                raise ValueError(f"{group.base_ref} moved outside the queue: the simulator does not rebuild for that")
            commits = repo.git.rev_list([f"{old}..{pr.head_sha}", "--no-merges"])
            repo.git.update_ref(f"refs/heads/{group.base_ref}", group.head_sha, old)
            pushed = push_hook(self.sim, repo, group.base_ref, old, group.head_sha, self.sim.web_url("github"))
        iid = self.sim.installation_for(repo)
        if iid is not None:
            pushed["installation"] = {"id": iid, "node_id": f"MDIz{iid}"}
        self.deliveries.append(
            self.sim.webhooks.send("github", "push", pushed, wait=True, repo_id=repo.id, installation_id=iid)
        )
        with self.sim.lock:
            pr.commit_shas = commits
            pr.merge_commit_sha = group.head_sha
            pr.merge_method = self.method
            pr.state = "merged"
            pr.merged_by = repo.owner
            pr.merged_at = pr.closed_at = pr.updated_at = now()
            closed = self.sim._pr_event(pr, "closed", repo.owner)
        closed.done.wait(self.sim.webhooks.timeout + 5)
        self.deliveries.append(closed)
        self._destroy(group, "merged")

    def _destroy(self, group: SimGroup, reason: Reason) -> None:
        group.state = "merged" if reason == "merged" else "destroyed"
        self._send(group, "destroyed", group.repo.owner, reason=reason)
        with group.repo.git.lock:
            group.repo.git.update_ref(group.head_ref, None)

    def _send(self, group: SimGroup, action: str, sender: str, *, reason: Reason | None = None) -> None:
        repo = group.repo
        web = self.sim.web_url("github")
        iid = self.sim.installation_for(repo)
        payload = merge_group_hook(self.sim, group, action, sender, web, reason=reason, installation_id=iid)
        delivery = self.sim.webhooks.send(
            "github", "merge_group", payload, wait=True, repo_id=repo.id, installation_id=iid
        )
        self.deliveries.append(delivery)


def merge_group_hook(
    sim: ForgeSim,
    group: SimGroup,
    action: str,
    sender: str,
    web: str,
    *,
    reason: Reason | None = None,
    installation_id: int | None = None,
) -> dict[str, Any]:
    """A ``merge_group`` delivery body, in GitHub's key order."""
    api = f"{web}/api/v3"
    info = group.repo.git.commit_info(group.head_sha) or {}
    payload: dict[str, Any] = {"action": action}
    if reason is not None:
        payload["reason"] = reason
    payload["merge_group"] = {
        "head_sha": group.head_sha,
        "head_ref": group.head_ref,
        "base_sha": group.base_sha,
        "base_ref": f"refs/heads/{group.base_ref}",
        "head_commit": {
            "id": group.head_sha,
            "tree_id": str(info.get("tree", "")),
            "message": str(info.get("message", "")),
            "timestamp": str(info.get("committer_date", "")),
            "author": {"name": str(info.get("author_name", "")), "email": str(info.get("author_email", ""))},
            "committer": {
                "name": str(info.get("committer_name", "")),
                "email": str(info.get("committer_email", "")),
            },
        },
    }
    payload["repository"] = sim.github.repo_json(group.repo, api, web)
    payload["sender"] = sim.github.user_json(sender, api, web)
    if installation_id is not None:
        payload["installation"] = {"id": installation_id, "node_id": f"MDIz{installation_id}"}
    return payload


def push_hook(sim: ForgeSim, repo: SimRepo, branch: str, before: str, after: str, web: str) -> dict[str, Any]:
    """The ``push`` delivery of the queue's fast-forward of ``branch`` from ``before`` to ``after``."""
    api = f"{web}/api/v3"
    commits = [_push_commit(repo, sha, web) for sha in repo.git.rev_list([f"{before}..{after}"])]
    return {
        "ref": f"refs/heads/{branch}",
        "before": before,
        "after": after,
        "repository": sim.github.repo_json(repo, api, web),
        "pusher": {"name": "GitHub", "email": "noreply@github.com"},
        "sender": sim.github.user_json(repo.owner, api, web),
        "created": False,
        "deleted": False,
        "forced": False,
        "base_ref": None,
        "compare": f"{web}/{repo.full_name}/compare/{before[:12]}...{after[:12]}",
        "commits": commits,
        "head_commit": commits[-1] if commits else None,
    }


def _push_commit(repo: SimRepo, sha: str, web: str) -> dict[str, Any]:
    info = repo.git.commit_info(sha) or {}
    return {
        "id": sha,
        "tree_id": str(info.get("tree", "")),
        "distinct": True,
        "message": str(info.get("message", "")),
        "timestamp": str(info.get("committer_date", "")),
        "url": f"{web}/{repo.full_name}/commit/{sha}",
        "author": {"name": str(info.get("author_name", "")), "email": str(info.get("author_email", ""))},
        "committer": {"name": str(info.get("committer_name", "")), "email": str(info.get("committer_email", ""))},
        "added": [],
        "removed": [],
        "modified": [],
    }
