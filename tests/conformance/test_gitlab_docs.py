"""The simulator's GitLab side, checked against the examples in GitLab's own documentation.

GitLab publishes no complete machine-readable description of its REST API or its webhooks, so the
oracle here is the example responses and payloads of its documentation (gitlabhq/gitlabhq ``doc/``,
read at the commits noted below; published at docs.gitlab.com). Each example is reduced to its
*shape* (field names, nesting, and JSON type where the example's value is not null): the
simulator's answer must have every documented field, with the documented type. Values are not
compared (ids, names and times are the simulator's own).

Compared (see also tools/forgesim/CONFORMANCE.md):

======================================================  ==========================================
simulator answer                                         documentation example
======================================================  ==========================================
``POST /projects/:id/merge_requests/:iid/notes``         doc/api/notes.md, "Get single merge
(and the list, ``GET`` one, and ``PUT``)                 request note" (the same entity)
``POST .../notes/:note_id/award_emoji``                  doc/api/emoji_reactions.md (award_emoji),
                                                         "List an awardable's ... comment"
``POST /projects/:id/statuses/:sha``                     doc/api/commits.md, "Set the pipeline
                                                         status of a commit"
``POST /projects/:id/deployments`` (and ``PUT``, the     doc/api/deployments.md, "Create a
list, ``GET`` one)                                       deployment" (and "Update a deployment")
``GET /projects/:id/environments`` (and ``GET`` one,     doc/api/environments.md, "List
``PUT``)                                                 environments" (and "Get a specific ...")
``GET /projects/:id/members/all/:user_id``               doc/api/members.md, "Get a member ...
                                                         including inherited"
``GET /projects/:id/merge_requests`` and ``/:iid``       doc/api/merge_requests.md, "List merge
                                                         requests"
``GET /users?username=``                                 doc/api/users.md, "List users" (for
                                                         non-administrators)
``GET .../merge_requests/:iid/resource_label_events``    doc/api/resource_label_events.md, "List
                                                         project merge request label events"
Merge Request Hook (open, update, merge, close)          tests/data/webhooks/gitlab/
                                                         merge_request.*.json
                                                         (webhook_events.md and real deliveries)
Note Hook on a merge request                             tests/data/webhooks/gitlab/
                                                         note.merge_request.json
``GET``/``POST``/``PUT /projects/:id/issues(/:iid)``     doc/api/issues.md, "Single project issue"
(the drift issue; ``state_event: close`` included)
``.../issues/:iid/notes`` (``GET``, ``POST``, one)       doc/api/notes.md, "Get single issue note"
Note Hook on an issue                                    webhook_events.md, "Comment on an issue"
                                                         (the note hook's common part from
                                                         note.merge_request.json, the ``issue``)
======================================================  ==========================================

:data:`ALLOWED` lists the fields the simulator leaves out on purpose, each with its reason.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.fixtures.forgesim import SimHarness
from tests.fixtures.services import FIXTURES
from tools.forgesim import SimRepo
from tools.forgesim.recording import Recorder

_USER = {"id": 1, "username": "u", "name": "U", "state": "active", "avatar_url": "https://x", "web_url": "https://x"}
#: Shapes of the documentation's examples (doc/api/*.md; values are placeholders of the same type).
DOCUMENTED: dict[str, Any] = {
    "note": {
        "id": 1,
        "body": "s",
        "attachment": None,
        "author": {"id": 1, "username": "u", "email": "e", "name": "n", "state": "active", "created_at": "t"},
        "created_at": "t",
        "updated_at": "t",
        "system": False,
        "noteable_id": 2,
        "noteable_type": "MergeRequest",
        "project_id": 5,
        "noteable_iid": 2,
        "resolvable": False,
        "confidential": False,
        "internal": False,
    },
    "award_emoji": {
        "id": 2,
        "name": "eyes",
        "user": {**_USER},
        "created_at": "t",
        "updated_at": "t",
        "awardable_id": 1,
        "awardable_type": "Note",
    },
    "commit_status": {
        "author": {**_USER},
        "name": "default",
        "sha": "s",
        "status": "success",
        "coverage": 100.0,
        "description": None,
        "id": 93,
        "target_url": None,
        "ref": None,
        "started_at": None,
        "created_at": "t",
        "allow_failure": False,
        "finished_at": "t",
    },
    "resource_label_event": {
        "id": 142,
        "user": {**_USER},
        "created_at": "t",
        "resource_type": "MergeRequest",
        "resource_id": 253,
        "label": {"id": 73, "name": "a1", "color": "#34495E", "description": "s"},
        "action": "add",
    },
    "issue": {
        "id": 76,
        "iid": 6,
        "project_id": 1,
        "title": "s",
        "description": "s",
        "state": "opened",
        "created_at": "t",
        "updated_at": "t",
        "closed_at": None,
        "closed_by": None,
        "labels": [],
        "milestone": None,
        "assignees": [],
        "author": {**_USER},
        "type": "ISSUE",
        "assignee": None,
        "user_notes_count": 1,
        "merge_requests_count": 0,
        "upvotes": 0,
        "downvotes": 0,
        "due_date": None,
        "confidential": False,
        "discussion_locked": None,
        "issue_type": "issue",
        "web_url": "https://x",
        "time_stats": {
            "time_estimate": 0,
            "total_time_spent": 0,
            "human_time_estimate": None,
            "human_total_time_spent": None,
        },
        "task_completion_status": {"count": 0, "completed_count": 0},
        "_links": {"self": "s", "notes": "s", "award_emoji": "s", "project": "s", "closed_as_duplicate_of": None},
        "references": {"short": "#6", "relative": "#6", "full": "g/p#6"},
        "severity": "UNKNOWN",
        "moved_to_id": None,
        "service_desk_reply_to": None,
    },
    #: webhook_events.md, "Comment on an issue": the ``issue`` object of the Note Hook.
    "issue (hook)": {
        "id": 92,
        "iid": 7,
        "title": "s",
        "description": "s",
        "state": "opened",
        "author_id": 1,
        "project_id": 5,
        "created_at": "t",
        "updated_at": "t",
        "assignee_ids": [],
        "assignee_id": None,
        "labels": [],
        "milestone_id": None,
        "confidential": False,
        "url": "https://x",
    },
    "deployment": {
        "id": 42,
        "iid": 2,
        "ref": "main",
        "sha": "s",
        "created_at": "t",
        "updated_at": "t",
        "status": "success",
        "user": {**_USER},
        "environment": {"id": 9, "name": "production", "external_url": "https://x"},
        "deployable": None,
    },
    "environment": {
        "id": 1,
        "name": "review/fix-foo",
        "slug": "review-fix-foo-dfjre3",
        "external_url": "https://x",
        "state": "available",
        "tier": "development",
        "created_at": "t",
        "updated_at": "t",
        "enable_advanced_logs_querying": False,
        "logs_api_path": "/project/-/logs/k8s.json?environment_name=review%2Ffix-foo",
        "auto_stop_at": "t",
        "kubernetes_namespace": "flux-system",
        "flux_resource_path": "HelmRelease/flux-system",
    },
    "member": {**_USER, "access_level": 30, "created_at": "t"},
    "user": {**_USER, "locked": False},
    "merge_request": {
        "id": 1,
        "iid": 1,
        "project_id": 3,
        "title": "s",
        "description": "s",
        "state": "opened",
        "created_at": "t",
        "updated_at": "t",
        "target_branch": "main",
        "source_branch": "b",
        "author": {**_USER},
        "assignees": [],
        "reviewers": [],
        "source_project_id": 2,
        "target_project_id": 3,
        "labels": ["l"],
        "draft": False,
        "work_in_progress": False,
        "milestone": None,
        "merge_when_pipeline_succeeds": True,
        "merge_status": "can_be_merged",
        "detailed_merge_status": "not_open",
        "sha": "s",
        "merge_commit_sha": None,
        "squash_commit_sha": None,
        "user_notes_count": 1,
        "discussion_locked": None,
        "should_remove_source_branch": True,
        "force_remove_source_branch": False,
        "web_url": "https://x",
        "references": {"short": "!1", "relative": "!1", "full": "g/p!1"},
        "time_stats": {
            "time_estimate": 0,
            "total_time_spent": 0,
            "human_time_estimate": None,
            "human_total_time_spent": None,
        },
        "squash": False,
        "task_completion_status": {"count": 0, "completed_count": 0},
    },
}
#: (what, JSON path) → why the simulator leaves the documented field out.
_ADMIN_VIEW = "the example shows an administrator's view; other callers get the author without it"
_CHANGES = (
    "`changes` lists what this particular action changed (the example's open came with an edit); the "
    "simulator reports updated_at, and state_id on merge/close; Mergeway never reads `changes`"
)
ALLOWED: dict[tuple[str, str], str] = {
    ("note", "$.author.email"): _ADMIN_VIEW,
    ("note", "$.author.created_at"): _ADMIN_VIEW,
    **{
        ("merge_request.open.json", f"$.changes.{field}"): _CHANGES
        for field in ("updated_by_id", "draft", "labels", "last_edited_at", "last_edited_by_id")
    },
}


def shape_differences(documented: Any, actual: Any, path: str = "$") -> list[str]:
    """Where ``actual`` lacks a field of ``documented`` or has another JSON type (nulls match anything)."""
    if documented is None or actual is None:
        return []
    if isinstance(documented, dict):
        if not isinstance(actual, dict):
            return [f"{path}: an object in the documentation, {type(actual).__name__} here"]
        found = []
        for key, value in documented.items():
            if key not in actual:
                found.append(f"{path}.{key}: missing")
            else:
                found.extend(shape_differences(value, actual[key], f"{path}.{key}"))
        return found
    if isinstance(documented, list):
        if not isinstance(actual, list):
            return [f"{path}: a list in the documentation, {type(actual).__name__} here"]
        return shape_differences(documented[0], actual[0], f"{path}[0]") if documented and actual else []
    numbers = (int, float)
    same = isinstance(actual, bool) == isinstance(documented, bool) and (
        isinstance(actual, numbers) if isinstance(documented, numbers) else type(actual) is type(documented)
    )
    return [] if same else [f"{path}: {type(documented).__name__} in the documentation, {type(actual).__name__} here"]


def check(what: str, documented: Any, actual: Any, used: set[tuple[str, str]]) -> list[str]:
    """The differences :data:`ALLOWED` does not excuse; the allowances that excused one go into ``used``."""
    found = []
    for difference in shape_differences(documented, actual):
        key = (what, difference.split(":", 1)[0])
        if key in ALLOWED:
            used.add(key)
        else:
            found.append(difference)
    return found


def stale_allowances(compared: Collection[str], used: set[tuple[str, str]]) -> list[str]:
    """Allowances for a shape that was compared but that no answer needed: remove them.

    A stale allowance would otherwise stay and hide the next real difference at that field.
    """
    return sorted(f"{what} {path}" for what, path in ALLOWED if what in compared and (what, path) not in used)


class Api:
    """Plain HTTP against the simulator's GitLab API, as python-gitlab sends it."""

    def __init__(self, sim: SimHarness, repo: SimRepo) -> None:
        self.base = f"{sim.gitlab_url}/api/v4/projects/{repo.id}"
        self.session = requests.Session()
        self.session.headers["PRIVATE-TOKEN"] = sim.bot_token("gitlab")
        self.root = f"{sim.gitlab_url}/api/v4"

    def __call__(self, method: str, path: str, **kwargs: Any) -> Any:
        url = path if path.startswith("http") else self.base + path
        response = self.session.request(method, url, timeout=10, **kwargs)
        assert response.status_code < 300, (method, path, response.status_code, response.text[:300])
        return response.json()


@pytest.fixture
def gitlab(forge_sim: SimHarness) -> tuple[SimHarness, SimRepo, Api]:
    repo = forge_sim.create_repo("gitlab", "group/conform", {"deploy/a.yaml": "a: 1\n"})
    return forge_sim, repo, Api(forge_sim, repo)


def test_rest_answers_have_the_documented_fields(gitlab: tuple[SimHarness, SimRepo, Api]) -> None:
    sim, repo, api = gitlab
    pr = sim.open_pr(repo, "feature", files={"deploy/a.yaml": "a: 2\n"})
    alice = sim.user("gitlab", "alice")
    answers = {
        "note": api("POST", f"/merge_requests/{pr.number}/notes", json={"body": "hello"}),
        "merge_request": api("GET", f"/merge_requests/{pr.number}"),
        "member": api("GET", f"/members/all/{alice.id}"),
        "user": api("GET", f"{api.root}/users", params={"username": "alice"})[0],
        "commit_status": api("POST", f"/statuses/{pr.head_sha}", json={"state": "success", "name": "mergeway/x"}),
    }
    note_id = answers["note"]["id"]
    answers["award_emoji"] = api(
        "POST", f"/merge_requests/{pr.number}/notes/{note_id}/award_emoji", json={"name": "eyes"}
    )
    listed = {
        "note": api("GET", f"/merge_requests/{pr.number}/notes")[0],
        "merge_request": api("GET", "/merge_requests", params={"source_branch": "feature"})[0],
    }
    listed["note (GET)"] = api("GET", f"/merge_requests/{pr.number}/notes/{note_id}")
    sim.label(repo, pr, "mergeway/allow-destructive", by="alice")
    answers["resource_label_event"] = api("GET", f"/merge_requests/{pr.number}/resource_label_events")[0]
    edited = api("PUT", f"/merge_requests/{pr.number}/notes/{note_id}", json={"body": "edited"})
    # The drift issue: open, list, read, edit, a note on it, close (state_event).
    issue = api("POST", "/issues", json={"title": "Drift in staging", "description": "d"})
    answers["issue"] = issue
    listed["issue"] = api("GET", "/issues", params={"state": "opened"})[0]
    listed["issue (GET)"] = api("GET", f"/issues/{issue['iid']}")
    listed["issue (PUT)"] = api("PUT", f"/issues/{issue['iid']}", json={"description": "e"})
    issue_note = api("POST", f"/issues/{issue['iid']}/notes", json={"body": "no drift left"})
    listed["note (issue)"] = issue_note
    listed["note (issue list)"] = api("GET", f"/issues/{issue['iid']}/notes")[0]
    listed["note (issue GET)"] = api("GET", f"/issues/{issue['iid']}/notes/{issue_note['id']}")
    closed = api("PUT", f"/issues/{issue['iid']}", json={"state_event": "close"})
    assert closed["state"] == "closed" and issue_note["noteable_type"] == "Issue"
    listed["issue (closed)"] = closed
    deploy = {"environment": "staging", "sha": pr.head_sha, "ref": "feature", "tag": False, "status": "running"}
    answers["deployment"] = api("POST", "/deployments", json=deploy)
    deployment_id, environment_id = answers["deployment"]["id"], answers["deployment"]["environment"]["id"]
    answers["environment"] = api("PUT", f"/environments/{environment_id}", json={"external_url": "https://s.example"})
    listed["deployment"] = api("GET", "/deployments", params={"environment": "staging"})[0]
    listed["deployment (PUT)"] = api("PUT", f"/deployments/{deployment_id}", json={"status": "success"})
    listed["deployment (GET)"] = api("GET", f"/deployments/{deployment_id}")
    listed["environment"] = api("GET", "/environments", params={"name": "staging"})[0]
    listed["environment (GET)"] = api("GET", f"/environments/{environment_id}")
    assert listed["environment (GET)"]["last_deployment"]["id"] == deployment_id
    used: set[tuple[str, str]] = set()
    failures = [f"{what} {d}" for what, answer in answers.items() for d in check(what, DOCUMENTED[what], answer, used)]
    failures += [
        f"{what} (list) {d}"
        for what, answer in listed.items()
        for d in check(what.split()[0], DOCUMENTED[what.split()[0]], answer, used)
    ]
    failures += [f"note (PUT) {d}" for d in check("note", DOCUMENTED["note"], edited, used)]
    assert not failures, "\n".join(failures)
    stale = stale_allowances(answers, used)
    assert not stale, f"allowances no answer needed; remove them from ALLOWED: {stale}"


def _fixture(name: str) -> dict[str, Any]:
    return json.loads((Path(FIXTURES) / "gitlab" / name).read_bytes())


def test_webhooks_have_the_fields_of_gitlabs_examples(gitlab: tuple[SimHarness, SimRepo, Api]) -> None:
    sim, repo, _ = gitlab
    pr = sim.open_pr(repo, "feature", files={"deploy/a.yaml": "a: 2\n"})
    sim.push(repo, pr, {"deploy/b.yaml": "b: 1\n"})
    sim.comment(repo, pr, "/preview")
    sim.merge(repo, pr)
    other = sim.open_pr(repo, "other", files={"deploy/c.yaml": "c: 1\n"})
    sim.close(repo, other)
    sim.webhooks.drain()
    sent = {(d.event, d.action or "note"): d.payload for d in sim.deliveries("gitlab") if d.event.endswith("Hook")}
    pairs = {
        "merge_request.open.json": ("Merge Request Hook", "open"),
        "merge_request.update.json": ("Merge Request Hook", "update"),
        "merge_request.merge.json": ("Merge Request Hook", "merge"),
        "merge_request.close.json": ("Merge Request Hook", "close"),
        "note.merge_request.json": ("Note Hook", "create"),
    }
    failures = []
    used: set[tuple[str, str]] = set()
    for fixture, key in pairs.items():
        assert key in sent, f"the simulator sent no {key}; sent: {sorted(sent)}"
        failures += [f"{fixture}: {d}" for d in check(fixture, _fixture(fixture), sent[key], used)]
    assert not failures, f"{len(failures)} differences:\n" + "\n".join(failures)
    stale = stale_allowances(pairs, used)
    assert not stale, f"allowances no delivery needed; remove them from ALLOWED: {stale}"


def issue_note_hook_differences(hook: dict[str, Any], used: set[tuple[str, str]]) -> list[str]:
    """A Note Hook on an issue against GitLab's: the note hook's common part, and the ``issue`` object."""
    common = {k: v for k, v in _fixture("note.merge_request.json").items() if k != "merge_request"}
    issue = hook.get("issue")
    return check("note.issue", common, hook, used) + (
        check("issue (hook)", DOCUMENTED["issue (hook)"], issue, used)
        if isinstance(issue, dict)
        else ["$.issue: missing"]
    )


def test_note_hook_on_an_issue_has_the_fields_of_gitlabs_example(gitlab: tuple[SimHarness, SimRepo, Api]) -> None:
    sim, repo, _ = gitlab
    issue = sim.open_issue(repo, "Drift in staging", "d", author="mergeway-bot")
    sim.issue_comment(repo, issue, "/revert-drift", author="alice")
    sim.webhooks.drain()
    [hook] = [d.payload for d in sim.deliveries("gitlab") if d.event == "Note Hook"]
    failures = issue_note_hook_differences(hook, set())
    assert not failures, "\n".join(failures)
    assert hook["object_attributes"]["noteable_type"] == "Issue" and "merge_request" not in hook


def test_shape_comparison_catches_a_missing_field() -> None:
    documented = {"a": 1, "b": {"c": "s", "d": [{"e": True}]}}
    assert shape_differences(documented, {"a": 2, "b": {"c": "x", "d": [{"e": False}]}}) == []
    assert shape_differences(documented, {"a": "2", "b": {"d": [{"e": 1}]}}) == [
        "$.a: int in the documentation, str here",
        "$.b.c: missing",
        "$.b.d[0].e: bool in the documentation, int here",
    ]


#: API path (after /api/v4) → which documented shape a 2xx answer has; lists are checked item by item.
ROUTES: tuple[tuple[str, str, str], ...] = (
    ("GET|POST|PUT", r"/projects/[^/]+/merge_requests/\d+/notes(/\d+)?", "note"),
    ("POST", r"/projects/[^/]+/merge_requests/\d+/notes/\d+/award_emoji", "award_emoji"),
    ("POST", r"/projects/[^/]+/statuses/[0-9a-fA-F]+", "commit_status"),
    ("GET|POST|PUT", r"/projects/[^/]+/deployments(/\d+)?", "deployment"),
    ("GET|PUT", r"/projects/[^/]+/environments(/\d+)?", "environment"),
    ("GET", r"/projects/[^/]+/members/all/\d+", "member"),
    ("GET", r"/users", "user"),
    ("GET|POST", r"/projects/[^/]+/merge_requests(/\d+)?", "merge_request"),
    ("GET|POST", r"/projects/[^/]+/issues/\d+/notes(/\d+)?", "note"),
    ("GET|POST|PUT", r"/projects/[^/]+/issues(/\d+)?", "issue"),
)
#: Request bodies Mergeway sends, as doc/api/deployments.md and environments.md document them:
#: (method, path) → (required attributes, optional attributes, the values ``status`` may take).
_STATUSES = ("running", "success", "failed", "canceled")
REQUESTS: tuple[tuple[str, str, frozenset[str], frozenset[str], tuple[str, ...]], ...] = (
    (
        "POST",
        r"/projects/[^/]+/deployments",
        frozenset({"environment", "sha", "ref", "tag", "status"}),
        frozenset(),
        _STATUSES,
    ),
    ("PUT", r"/projects/[^/]+/deployments/\d+", frozenset({"status"}), frozenset(), _STATUSES),
    ("PUT", r"/projects/[^/]+/environments/\d+", frozenset(), frozenset({"external_url", "tier"}), ()),
)


def request_differences(method: str, path: str, body: bytes) -> list[str]:
    """How a recorded request body differs from the documented attributes ([] when it does not, or is not compared)."""
    for want, regex, required, optional, statuses in REQUESTS:
        if method != want or not re.fullmatch(regex, path):
            continue
        sent = json.loads(body) if body.strip() else {}
        out = [f"{method} {path}: {name} is missing" for name in sorted(required - set(sent))]
        out += [f"{method} {path}: {name} is not documented" for name in sorted(set(sent) - required - optional)]
        if statuses and sent.get("status") not in statuses:
            out.append(f"{method} {path}: status {sent.get('status')!r} is not one of {', '.join(statuses)}")
        return out
    return []


HOOKS = {
    ("Merge Request Hook", action): f"merge_request.{action}.json" for action in ("open", "update", "merge", "close")
} | {("Note Hook", "create"): "note.merge_request.json"}


@pytest.mark.session_traffic
def test_recorded_gitlab_traffic_has_the_documented_fields(session_traffic: Recorder) -> None:
    """The same comparison over every GitLab answer and hook recorded in the session (e2e included)."""
    failures: set[str] = set()
    compared: set[str] = set()
    used: set[tuple[str, str]] = set()
    for exchange in session_traffic.exchanges:
        if exchange.forge == "gitlab" and not exchange.injected:  # what was asked, whatever the answer
            failures.update(request_differences(exchange.method, exchange.path, exchange.request))
        if exchange.forge != "gitlab" or exchange.injected or not 200 <= exchange.status < 300:
            continue
        what = next(
            (
                w
                for methods, regex, w in ROUTES
                if exchange.method in methods.split("|") and re.fullmatch(regex, exchange.path)
            ),
            None,
        )
        if what is None:
            continue
        compared.add(what)
        body = json.loads(exchange.body)
        for item in body if isinstance(body, list) else [body]:
            failures.update(f"{exchange.method} {what}: {d}" for d in check(what, DOCUMENTED[what], item, used))
    for hook in session_traffic.hooks:
        fixture = HOOKS.get((hook.event, hook.action))
        if hook.forge != "gitlab" or fixture is None:
            continue
        payload = json.loads(hook.body)
        if payload.get("object_attributes", {}).get("noteable_type") == "Issue":
            compared.add("note.issue")
            failures.update(f"note.issue: {d}" for d in issue_note_hook_differences(payload, used))
            continue
        compared.add(fixture)
        failures.update(f"{fixture}: {d}" for d in check(fixture, _fixture(fixture), payload, used))
    assert compared >= {"note", "merge_request.open.json", "note.merge_request.json"}, sorted(compared)
    assert not failures, "\n".join(sorted(failures))
    stale = stale_allowances(compared, used)
    assert not stale, f"allowances no recorded answer needed; remove them from ALLOWED: {stale}"
    print(f"\nGitLab conformance: compared {', '.join(sorted(compared))}")
