"""The drift issue through the real client libraries against the simulator, on both forges.

:meth:`Publisher.drift_issue` is fed checks by hand here (detection is tested on its own): one issue
per environment, opened on the first drift, edited in place only when its text changes, closed with
a comment when a check finds nothing, never confused with someone else's issue carrying the marker,
and a failed check's error shown without the secret it may contain.
"""

from __future__ import annotations

import pytest

from mergeway.drift import DriftCheck, FieldDrift, ObjectDrift
from mergeway.events import Command, IssueCommand
from mergeway.forge.identity import IdentityError, verified_issue_command
from mergeway.redaction import register_secret
from mergeway.report.publish import Publisher
from tests.fixtures.forgesim import SimHarness
from tools.forgesim import SimRepo

NAMES = {"github": "acme/shop", "gitlab": "platform/team/shop"}
COMMIT = "a" * 40
SCALED = ObjectDrift(
    "apps/v1",
    "Deployment",
    "shop",
    "web",
    "changed",
    (FieldDrift("/spec/replicas", "5", "3", "kubectl-scale", "2026-12-05T00:10:00Z"),),
    diff="-  replicas: 3\n+  replicas: 5\n",
    default_namespace="shop",
)
EDITED = ObjectDrift(
    "v1",
    "ConfigMap",
    "shop",
    "app",
    "changed",
    (FieldDrift("/data/colour", "red", "blue", "kubectl-edit", "2026-12-05T00:11:00Z"),),
    diff="-  colour: blue\n+  colour: red\n",
    default_namespace="shop",
)


def found(*objects: ObjectDrift, environment: str = "production", error: str = "") -> DriftCheck:
    return DriftCheck("github:acme/shop", environment, COMMIT, 1.0, objects, error=error)


@pytest.fixture(params=["github", "gitlab"])
def repo(request: pytest.FixtureRequest, forge_sim: SimHarness) -> SimRepo:
    return forge_sim.create_repo(request.param, NAMES[request.param], {"README.md": "# shop\n"})


def writes(forge_sim: SimHarness, repo: SimRepo) -> int:
    return len([r for r in forge_sim.api_requests(repo.forge) if r.method in ("POST", "PATCH", "PUT")])


def test_one_issue_opened_edited_in_place_and_closed_with_a_comment(forge_sim: SimHarness, repo: SimRepo) -> None:
    out = Publisher(forge_sim.forge(repo), 0)
    out.drift_issue(found(SCALED))
    [issue] = forge_sim.list_issues(repo)
    assert issue.title == "Drift in production" and issue.state == "open" and issue.author == "mergeway-bot"
    assert "<code>Deployment/web</code>" in issue.body and "<code>kubectl-scale</code>" in issue.body
    assert "<code>/spec/replicas</code> live <code>5</code>, Git <code>3</code>" in issue.body
    assert "/revert-drift" in issue.body and "/adopt-drift" in issue.body

    before = writes(forge_sim, repo)
    out.drift_issue(found(SCALED))  # the same drift: nothing is rewritten
    assert writes(forge_sim, repo) == before

    out.drift_issue(found(SCALED, EDITED))  # it changed: the same issue, edited
    [issue] = forge_sim.list_issues(repo)
    assert "<code>ConfigMap/app</code>" in issue.body and "<code>kubectl-edit</code>" in issue.body

    out.drift_issue(found(SCALED, environment="staging"))  # another environment: its own issue
    assert [i.title for i in forge_sim.list_issues(repo)] == ["Drift in production", "Drift in staging"]

    out.drift_issue(found())  # no drift left in production: closed, with a comment saying so
    production = forge_sim.issue(repo, issue.number)
    assert production.state == "closed"
    [closing] = forge_sim.list_issue_comments(repo, issue.number)
    assert "no drift left" in closing.body
    assert forge_sim.list_issues(repo)[1].state == "open"

    out.drift_issue(found(EDITED))  # drift again later: a new issue, not the closed one reopened
    assert [i.state for i in forge_sim.list_issues(repo)] == ["closed", "open", "open"]


def test_someone_elses_issue_with_the_marker_is_never_touched(forge_sim: SimHarness, repo: SimRepo) -> None:
    forge_sim.set_permission(repo, "mallory", "developer" if repo.forge == "gitlab" else "write")
    fake = forge_sim.open_issue(repo, "Drift in production", "<!-- mergeway:drift:production -->", author="mallory")
    out = Publisher(forge_sim.forge(repo), 0)
    out.drift_issue(found(SCALED))
    out.drift_issue(found())
    assert forge_sim.issue(repo, fake.number).body == "<!-- mergeway:drift:production -->"
    assert forge_sim.issue(repo, fake.number).state == "open"
    mine = [i for i in forge_sim.list_issues(repo) if i.author == "mergeway-bot"]
    assert [i.state for i in mine] == ["closed"]


def test_a_failed_check_keeps_the_issue_and_shows_no_secret(forge_sim: SimHarness, repo: SimRepo) -> None:
    out = Publisher(forge_sim.forge(repo), 0)
    out.drift_issue(found(SCALED))
    register_secret("hunter2-cluster-token")
    out.drift_issue(found(error="cluster refused token hunter2-cluster-token"))
    [issue] = forge_sim.list_issues(repo)
    assert issue.state == "open" and "could not compare" in issue.body
    assert "hunter2-cluster-token" not in issue.body and "<code>Deployment/web</code>" in issue.body
    out.drift_issue(found(error="still down"))  # no drift issue and a failed check: nothing opened elsewhere
    assert len(forge_sim.list_issues(repo)) == 1
    out.issue_reply(issue.number, "could not revert: git said hunter2-cluster-token")  # a command's reply too
    assert all("hunter2" not in c.body for c in forge_sim.list_issue_comments(repo, issue.number))


def test_a_command_on_the_issue_is_read_back_from_the_forge(forge_sim: SimHarness, repo: SimRepo) -> None:
    forge = forge_sim.forge(repo)
    issue = Publisher(forge, 0).drift_issue(found(SCALED))
    assert issue is not None
    comment = forge_sim.issue_comment(repo, issue.number, "/revert-drift", author="alice")
    claimed = IssueCommand("d", forge.repo, issue.number, Command("revert-drift"), comment.id, author="admin")
    assert verified_issue_command(claimed, forge).author == "alice"
    with pytest.raises(IdentityError):  # a delivery naming another comment, or another command, is refused
        verified_issue_command(
            IssueCommand("d", forge.repo, issue.number, Command("adopt-drift"), comment.id, "a"), forge
        )
    with pytest.raises(IdentityError):
        verified_issue_command(IssueCommand("d", forge.repo, issue.number + 1, claimed.command, comment.id, "a"), forge)
