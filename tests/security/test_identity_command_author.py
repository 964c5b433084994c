"""A command's author is the forge's, read back by comment id, never the payload's (finding 8 of issue 24).

GitHub signs every repository's deliveries with one webhook secret per App or per configured
secret, and a GitLab secret may be shared by a group: whoever holds it (an admin of *another*
repository) can sign a payload naming any author. Before this test, such a payload ran ``/rollback``
on the victim's repository as its maintainer. Now the worker reads the comment back by id on that
pull request and acts as its real author, or does nothing when the comment is not there.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.fixtures.e2e import Stack
from tests.security.identity_support import deliver, files, held_webhooks, recorded_payload
from tools.forgesim import SimRepo

pytestmark = pytest.mark.cluster
EVENT = {"github": "issue_comment", "gitlab": "Note Hook"}


def _merged_pr_with_a_comment(stack: Stack, forge: str) -> tuple[SimRepo, int, dict[str, Any]]:
    """The victim's merged pull request and the payload of mallory's ``/rollback`` on it (held, not sent)."""
    victim = stack.repo(forge=forge, name="acme/shop")
    stack.sim.set_permission(victim, "mallory", "read")
    with held_webhooks(stack, forge):
        pr = stack.sim.open_pr(victim, "change", files=files("changed"))
        stack.sim.merge(victim, pr)
        stack.sim.comment(victim, pr, "/rollback", author="mallory")
        payload = recorded_payload(stack, forge, EVENT[forge])
    return victim, pr.number, payload


def _set_author(forge: str, payload: dict[str, Any], login: str) -> None:
    if forge == "github":
        payload["comment"]["user"]["login"] = login
        payload["sender"]["login"] = login
    else:
        payload["user"]["username"] = login


@pytest.mark.parametrize("forge", ["github", "gitlab"])
def test_a_payload_naming_a_maintainer_runs_as_the_comments_real_author(stack: Stack, forge: str) -> None:
    victim, number, payload = _merged_pr_with_a_comment(stack, forge)
    _set_author(forge, payload, "alice")  # alice may write; mallory may only read

    deliver(stack, forge, EVENT[forge], payload)

    def refusal() -> str | None:
        bodies = [c.body for c in stack.sim.list_comments(victim, number) if c.author == "mergeway-bot"]
        return next((b for b in bodies if "only users with write access" in b), None)

    text = stack.wait(refusal, timeout=90, message="the refusal addressed to the comment's real author")
    assert "@mallory" in text and "@alice" not in text
    assert [p.number for p in stack.sim.list_prs(victim)] == [number]  # no revert pull request


@pytest.mark.parametrize("forge", ["github", "gitlab"])
def test_a_comment_that_is_not_on_the_pull_request_runs_nothing(stack: Stack, forge: str) -> None:
    victim, number, payload = _merged_pr_with_a_comment(stack, forge)
    attacker = stack.repo(forge=forge, name="mallory/tools")
    with held_webhooks(stack, forge):
        own = stack.sim.open_pr(attacker, "tools", files=files("tools"))
        elsewhere = stack.sim.comment(attacker, own, "/rollback", author="mallory")
    _set_author(forge, payload, "alice")
    if forge == "github":
        payload["comment"]["id"] = elsewhere.id
    else:
        payload["object_attributes"]["id"] = elsewhere.id

    answer = deliver(stack, forge, EVENT[forge], payload)
    end = stack.workers[0].wait_log(
        lambda r: (
            r.get("job_id") == answer["job_id"]
            and str(r.get("msg", "")).startswith(("rollback job failed", "rollback job succeeded"))
        ),
        timeout=90,
        message="the end of the rollback job",
    )
    assert end["msg"].startswith("rollback job failed: IdentityError"), end["msg"]
    assert "does not exist" in end["msg"]
    assert [c.author for c in stack.sim.list_comments(victim, number)] == ["mallory"]  # nothing posted
    assert [p.number for p in stack.sim.list_prs(victim)] == [number]
