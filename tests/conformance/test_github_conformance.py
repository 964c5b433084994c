"""The simulator's GitHub side, checked against GitHub's official descriptions.

Every API answer and webhook delivery of the whole test session is recorded (see conftest.py):
the end-to-end tests' real traffic (Mergeway's workers calling through PyGithub, webhooks to the
web service) plus :func:`test_mergeway_operations_against_the_simulator` below, which drives each
operation Mergeway performs once, so that running this directory alone still covers them all. At
the end of the session every recorded answer is validated against ``@octokit/openapi`` for its path,
method and status, and every delivery against ``@octokit/openapi-webhooks`` for its event and action.

Where the simulator must differ from GitHub, :data:`ALLOWED` names the difference and says why.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections import Counter
from dataclasses import dataclass

import pytest
import requests

from mergeway.forge import (
    Forge,
    ForgeAuthError,
    ForgeNotFoundError,
    ForgePermissionError,
    ForgeValidationError,
    Permission,
)
from mergeway.forge.base import DeploymentUpdate
from tests.conformance.oracle import Difference, RestDescription, WebhookDescription
from tests.fixtures.forgesim import SimHarness
from tools.forgesim import SimRepo
from tools.forgesim.mergequeue import MergeQueue
from tools.forgesim.recording import Recorder


@dataclass(frozen=True)
class Allowed:
    """A known difference. ``method``/``template``/``where`` are regexes (full match), ``what`` is
    searched in the validator's message; ``body_schema`` names the component schema the body must
    still match when the difference is an undocumented status."""

    method: str
    template: str
    status: int
    where: str
    what: str
    reason: str
    body_schema: str = ""

    def matches(self, method: str, template: str, status: int, difference: Difference) -> bool:
        return (
            status == self.status
            and re.fullmatch(self.method, method) is not None
            and re.fullmatch(self.template, template) is not None
            and re.fullmatch(self.where, difference.where) is not None
            and re.search(self.what, difference.what) is not None
        )


_UNDOCUMENTED = r"status \d+ is not documented"
ALLOWED: tuple[Allowed, ...] = (
    Allowed(
        ".*",
        ".*",
        401,
        r"\$",
        _UNDOCUMENTED,
        "GitHub answers 401 Bad credentials on every operation for a missing, revoked or expired token; "
        "the description lists 401 on a few operations only. The body must still be GitHub's basic-error.",
        "basic-error",
    ),
    Allowed(
        ".*",
        ".*",
        403,
        r"\$",
        _UNDOCUMENTED,
        "403 (no push access; 'Resource not accessible by integration' for an app) exists on every write; "
        "the description lists it on some operations only (not on statuses or comment edits).",
        "basic-error",
    ),
    Allowed(
        ".*",
        ".*",
        404,
        r"\$",
        _UNDOCUMENTED,
        "404 for what does not exist or cannot be seen (a deleted comment, a PR of a repository one cannot "
        "read) exists on every operation with a path parameter; not listed on e.g. DELETE comments.",
        "basic-error",
    ),
    Allowed(
        ".*",
        ".*",
        422,
        r"\$",
        _UNDOCUMENTED,
        "422 Validation Failed (unknown SHA, bad state, too long a description) is what POST statuses "
        "answers to invalid input; the description documents only its 201.",
        "validation-error",
    ),
    Allowed(
        "POST",
        r"/repos/\{owner\}/\{repo\}/deployments",
        409,
        r"\$",
        "is documented without a body",
        "GitHub answers 409 with a message ('Conflict: Commit status checks failed for main.') and the failing "
        "contexts; the description documents the 409 without content.",
        "basic-error",
    ),
    Allowed(
        "GET",
        r"/repos/\{owner\}/\{repo\}/pulls/\{pull_number\}",
        200,
        r"\$\.head\.repo",
        r"None is not of type 'object'",
        "GitHub answers head.repo: null once the fork a pull request came from is deleted (Mergeway then "
        "treats it as a fork); the description types head.repo as a repository object only.",
    ),
)

#: (method, path template) of every GitHub endpoint Mergeway uses (PyGithub underneath).
MERGEWAY_ENDPOINTS = {
    ("GET", "/repos/{owner}/{repo}"),
    ("GET", "/repos/{owner}/{repo}/pulls"),
    ("POST", "/repos/{owner}/{repo}/pulls"),
    ("GET", "/repos/{owner}/{repo}/pulls/{pull_number}"),
    ("GET", "/repos/{owner}/{repo}/pulls/{pull_number}/commits"),
    ("GET", "/repos/{owner}/{repo}/issues/{issue_number}/comments"),
    ("POST", "/repos/{owner}/{repo}/issues/{issue_number}/comments"),
    ("GET", "/repos/{owner}/{repo}/issues/comments/{comment_id}"),
    ("GET", "/repos/{owner}/{repo}/issues/{issue_number}/events"),
    ("PATCH", "/repos/{owner}/{repo}/issues/comments/{comment_id}"),
    ("DELETE", "/repos/{owner}/{repo}/issues/comments/{comment_id}"),
    ("POST", "/repos/{owner}/{repo}/issues/comments/{comment_id}/reactions"),
    ("GET", "/repos/{owner}/{repo}/commits/{ref}"),
    ("POST", "/repos/{owner}/{repo}/statuses/{sha}"),
    ("GET", "/repos/{owner}/{repo}/collaborators/{username}/permission"),
    ("GET", "/repos/{owner}/{repo}/installation"),
    ("POST", "/repos/{owner}/{repo}/deployments"),
    ("POST", "/repos/{owner}/{repo}/deployments/{deployment_id}/statuses"),
    ("POST", "/app/installations/{installation_id}/access_tokens"),
    # the drift issue (mergeway.report.publish.Publisher.drift_issue)
    ("GET", "/repos/{owner}/{repo}/issues"),
    ("POST", "/repos/{owner}/{repo}/issues"),
    ("GET", "/repos/{owner}/{repo}/issues/{issue_number}"),
    ("PATCH", "/repos/{owner}/{repo}/issues/{issue_number}"),
}
#: Webhook kinds the simulator sends (and Mergeway handles).
SIMULATED_WEBHOOKS = {
    "pull-request-opened",
    "pull-request-synchronize",
    "pull-request-closed",
    "issue-comment-created",
    "merge-group-checks-requested",
    "merge-group-destroyed",
    "push",
}


def test_mergeway_operations_against_the_simulator(forge_sim: SimHarness) -> None:
    """Each forge operation Mergeway performs, through its real client, so the recorder sees them."""
    repo = forge_sim.create_repo("github", "acme/conform", {"deploy/a.yaml": "a: 1\n"})
    pr = forge_sim.open_pr(repo, "feature", files={"deploy/a.yaml": "a: 2\n"}, title="Change a")
    forge_sim.push(repo, pr, {"deploy/b.yaml": "b: 1\n"})
    forge_sim.comment(repo, pr, "/preview", author="alice")
    forge = forge_sim.forge(repo)

    sticky = forge.upsert_comment(pr.number, "<!-- conform -->", "first")
    forge.upsert_comment(pr.number, "<!-- conform -->", "second")
    forge.add_reaction(pr.number, sticky.id, "eyes")
    forge.add_reaction(pr.number, sticky.id, "eyes")  # repeated: 200 with the existing reaction
    scratch = forge.create_comment(pr.number, "scratch")
    forge.delete_comment(pr.number, scratch.id)
    assert [c.id for c in forge.list_comments(pr.number)][-1] == sticky.id
    assert forge.get_comment(pr.number, sticky.id) == forge.list_comments(pr.number)[-1]
    assert forge.get_comment(pr.number + 1, sticky.id) is None  # on another pull request: not this one's
    forge_sim.label(repo, pr, "mergeway/allow-destructive", by="alice")
    assert forge.label_added_by(pr.number, "mergeway/allow-destructive") == "alice"
    forge.set_status(pr.head_sha, "pending", "mergeway/preview/staging", "rendering")
    forge.set_status(pr.head_sha, "success", "mergeway/preview/staging", "ok", "https://ci.example/1")
    assert forge.get_permission("alice") is Permission.WRITE
    assert forge.get_permission("stranger") is Permission.NONE
    assert forge.get_pull_request(pr.number).head_sha == pr.head_sha
    with pytest.raises(ForgeNotFoundError):
        forge.get_pull_request(999)

    _deployments(forge_sim, repo, forge, pr.head_sha)

    forge_sim.commit(repo, "revert-1", {"deploy/a.yaml": "a: 1\n"})
    opened = forge.open_pull_request("revert-1", "main", "Revert", "body")
    assert forge.open_pull_request("revert-1", "main", "Revert", "body").number == opened.number
    forge_sim.merge(repo, pr, method="squash")
    assert forge.get_pull_request(pr.number).merge_commit_sha
    forge_sim.close(repo, opened.number)

    app = forge_sim.create_github_app("mergeway")
    forge_sim.install_app(app, repo)
    as_app = forge_sim.forge(
        repo, github_token="", github_app_id=str(app.app_id), github_app_private_key=app.private_key_pem
    )
    as_app.create_comment(pr.number, "from the app")

    # The errors each allowance in ALLOWED exists for, so that running this directory alone still
    # needs every allowance (and a stale one fails the check below).
    with pytest.raises(ForgeAuthError):
        forge_sim.forge(repo, github_token="revoked-token").get_pull_request(pr.number)  # 401
    forge_sim.add_user("github", "reader")
    forge_sim.set_permission(repo, "reader", "read")
    reader = forge_sim.forge(repo, github_token=forge_sim.token_for("github", "reader"))
    with pytest.raises(ForgePermissionError):
        reader.set_status(pr.head_sha, "success", "mergeway/preview/staging", "ok")  # 403
    with pytest.raises(ForgeNotFoundError):
        forge.delete_comment(pr.number, scratch.id)  # 404: already deleted
    with pytest.raises(ForgeValidationError):
        forge.set_status("0" * 40, "success", "mergeway/preview/staging", "ok")  # 422: no such commit
    from_fork = forge_sim.open_pr(repo, "from-fork", files={"deploy/a.yaml": "a: 3\n"}, fork_owner="mallory")
    forge_sim.delete_fork(repo, from_fork)
    forge.get_pull_request(from_fork.number)  # head.repo: null

    # The drift issue: open, find (the list holds pull requests too), edit, a user's command on it
    # (issue_comment on an issue: no pull_request key), read back, close with a comment.
    issue = forge.open_issue("Drift in staging", "<!-- mergeway:drift:staging -->\nDeployment/web")
    assert forge.find_issue("<!-- mergeway:drift:staging -->") == issue
    forge.edit_issue(issue.number, "Drift in staging", "<!-- mergeway:drift:staging -->\nConfigMap/app")
    asked = forge_sim.issue_comment(repo, issue.number, "/revert-drift", author="alice")
    assert forge.get_issue_comment(issue.number, asked.id) is not None
    assert forge.get_issue(pr.number) is None  # a pull request is not an issue
    forge.close_issue(issue.number, "no drift left")
    assert forge.find_issue("<!-- mergeway:drift:staging -->") is None
    forge_sim.webhooks.drain()


def _deployments(sim: SimHarness, repo: SimRepo, forge: Forge, sha: str) -> None:
    """Mergeway's deployment calls, then each read GitHub offers on deployments (so their answers are checked too)."""
    first = DeploymentUpdate("staging", sha, "main", "queued", "Queued", pr=1)
    one = forge.create_deployment(first)
    assert one is not None
    forge.update_deployment(one, dataclasses.replace(first, state="success", log_url="https://x.example/1"))
    two = forge.create_deployment(first)
    assert two is not None
    forge.update_deployment(two, dataclasses.replace(first, state="success", environment_url="https://s.example/"))
    api = f"{sim.github_api_url}/repos/{repo.full_name}/deployments"
    session = requests.Session()
    session.headers["Authorization"] = f"token {sim.bot_token('github')}"
    for url in (api, f"{api}/{one}", f"{api}/{one}/statuses"):
        assert session.get(url, params={"environment": "staging"}, timeout=10).status_code == 200
    status = session.get(f"{api}/{one}/statuses", timeout=10).json()[0]
    assert status["state"] == "inactive"  # auto_inactive retired it when the second succeeded
    assert session.get(f"{api}/{one}/statuses/{status['id']}", timeout=10).status_code == 200
    # 409: without required_contexts, GitHub waits for every status context to be success.
    forge.set_status(sha, "failure", "ci/other", "red")
    refused = session.post(api, json={"ref": sha, "environment": "staging", "auto_merge": False}, timeout=10)
    assert refused.status_code == 409


def test_merge_queue_against_the_simulator(forge_sim: SimHarness) -> None:
    """The merge queue's deliveries (every action and reason) and the status calls on a group's head."""
    repo = forge_sim.create_repo("github", "acme/queued", {"deploy/a.yaml": "a: 1\n"})
    first = forge_sim.open_pr(repo, "one", files={"deploy/a.yaml": "a: 2\n"}, title="One")
    second = forge_sim.open_pr(repo, "two", files={"deploy/b.yaml": "b: 1\n"}, title="Two")
    queue = MergeQueue(forge_sim, required=("mergeway/preview/staging",))
    group = queue.enqueue(repo, first)
    queue.enqueue(repo, second)
    forge = forge_sim.forge(repo)
    forge.set_status(group.head_sha, "failure", "mergeway/preview/staging", "refused")  # dequeued, invalidated
    assert queue.process(repo) == [f"dequeued #{first.number}"]
    [rebuilt] = queue.queue(repo)
    forge.set_status(rebuilt.head_sha, "success", "mergeway/preview/staging", "ok")
    assert queue.process(repo) == [f"merged #{second.number}"]  # merged
    forge_sim.webhooks.drain()


def _summary(recorder: Recorder, forge: str) -> Counter[str]:
    return Counter({k: v for k, v in recorder.counts.items() if k.startswith(forge + " ")})


@pytest.mark.session_traffic
def test_every_recorded_api_answer_matches_the_rest_description(
    session_traffic: Recorder, rest_description: RestDescription
) -> None:
    failures: list[str] = []
    seen: set[tuple[str, str]] = set()
    statuses: set[tuple[str, str, int]] = set()
    used: set[Allowed] = set()
    undocumented: set[tuple[str, str, int]] = set()
    requests_checked = 0
    exchanges = [e for e in session_traffic.exchanges if e.forge == "github" and not e.injected]
    assert exchanges, "no GitHub API traffic was recorded"
    for exchange in exchanges:
        template = rest_description.template(exchange.path)
        if template is None:
            failures.append(f"{exchange.method} {exchange.path}: no such path in the description")
            continue
        if rest_description.operation(exchange.method, template) is None:
            if exchange.status == 405:  # the simulator's answer to an undescribed method, like GitHub's
                continue
            failures.append(f"{exchange.method} {template}: no such operation in the description")
            continue
        seen.add((exchange.method, template))
        statuses.add((exchange.method, template, exchange.status))
        failures += [
            f"{exchange.method} {template} request: {d}"
            for d in rest_description.check_request(exchange.method, template, exchange.request)
        ]
        requests_checked += bool(exchange.request.strip())
        for difference in rest_description.check(exchange.method, template, exchange.status, exchange.body):
            allowed = next(
                (a for a in ALLOWED if a.matches(exchange.method, template, exchange.status, difference)), None
            )
            if allowed is not None:
                used.add(allowed)
                if allowed.body_schema:
                    failures += [
                        f"{exchange.method} {template} → {exchange.status} (as {allowed.body_schema}): {d}"
                        for d in rest_description.check_component(allowed.body_schema, exchange.body)
                    ]
                    undocumented.add((exchange.method, template, exchange.status))
                continue
            failures.append(f"{exchange.method} {template} → {exchange.status}: {difference}")
    missing = MERGEWAY_ENDPOINTS - seen
    assert not missing, f"endpoints Mergeway uses were never called: {sorted(missing)}"
    # Every allowance is still needed: one the simulator or the description no longer calls for
    # would otherwise stay and hide the next real difference of its kind.
    stale = [f"{a.status} ({a.reason[:60]}...)" for a in ALLOWED if a not in used]
    assert not stale, f"allowances no recorded answer needed; remove them: {stale}"
    assert not failures, f"{len(set(failures))} differences from @octokit/openapi:\n" + "\n".join(
        sorted(set(failures))[:2000]
    )
    for method, template, status in sorted(undocumented):
        print(f"\nundocumented status (allowed): {method} {template} → {status}", end="")
    print(
        f"\nREST conformance: {len(seen)} endpoints, {len(statuses)} (endpoint, status) pairs, "
        f"{len(exchanges)} answers, {requests_checked} request bodies"
    )


@pytest.mark.session_traffic
def test_every_recorded_delivery_matches_the_webhook_description(
    session_traffic: Recorder, webhook_description: WebhookDescription
) -> None:
    failures: list[str] = []
    kinds: set[str] = set()
    hooks = [h for h in session_traffic.hooks if h.forge == "github"]
    assert hooks, "no GitHub webhook delivery was recorded"
    for hook in hooks:
        name = webhook_description.name(hook.event, hook.action)
        kinds.add(name)
        headers = {k.lower() for k in hook.headers}
        for header in webhook_description.required_headers(name):
            # Signatures exist only when a secret is configured, as on GitHub.
            if header.lower() not in headers and header != "X-Hub-Signature-256":
                failures.append(f"{name}: header {header} is missing")
        for difference in webhook_description.check(name, json.loads(hook.body)):
            failures.append(f"{name}: {difference}")
    missing = SIMULATED_WEBHOOKS - kinds
    assert not missing, f"webhook kinds never sent: {sorted(missing)}"
    assert not failures, f"{len(set(failures))} differences from @octokit/openapi-webhooks:\n" + "\n".join(
        sorted(set(failures))[:2000]
    )
    print(f"\nWebhook conformance: {len(kinds)} kinds ({', '.join(sorted(kinds))}), {len(hooks)} deliveries")
