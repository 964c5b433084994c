"""Every forge operation, through the real client libraries, against the simulator (both forges)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

import pytest

from mergeway.forge import (
    CommentRef,
    CommentTooLongError,
    ForgeAuthError,
    ForgeNotFoundError,
    ForgePermissionError,
    ForgeValidationError,
    Permission,
)
from tests.fixtures.forgesim import SimHarness
from tests.fixtures.waiting import run_concurrently
from tools.forgesim import SimPR, SimRepo

MARKER = "<!-- mergeway:preview:staging -->"
NAMES = {"github": "acme/shop", "gitlab": "platform/team/shop"}


@pytest.fixture(params=["github", "gitlab"])
def forge_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def repo(forge_sim: SimHarness, forge_name: str) -> SimRepo:
    return forge_sim.create_repo(forge_name, NAMES[forge_name], {"deploy/app.yaml": "kind: ConfigMap\n"})  # type: ignore[arg-type]


@pytest.fixture
def pr(forge_sim: SimHarness, repo: SimRepo) -> SimPR:
    return forge_sim.open_pr(repo, "feature", files={"deploy/app.yaml": "kind: Secret\n"}, title="Change app")


# -- sticky comments ------------------------------------------------------------------------------------


def test_upsert_creates_then_edits_one_comment(forge_sim: SimHarness, repo: SimRepo, pr: SimPR) -> None:
    forge = forge_sim.forge(repo)
    first = forge.upsert_comment(pr.number, MARKER, "plan: 1 to add")
    second = forge.upsert_comment(pr.number, MARKER, "plan: 2 to add")
    comments = forge_sim.list_comments(repo, pr.number)
    assert len(comments) == 1
    assert first.id == second.id == comments[0].id
    assert comments[0].body == f"{MARKER}\nplan: 2 to add"
    assert comments[0].author == "mergeway-bot"
    # other comments (and other markers) are left alone
    forge_sim.comment(repo, pr, "looks good")
    forge.upsert_comment(pr.number, "<!-- mergeway:preview:prod -->", "prod plan")
    forge.upsert_comment(pr.number, MARKER, "plan: 3 to add")
    bodies = [c.body for c in forge_sim.list_comments(repo, pr.number)]
    assert bodies == [f"{MARKER}\nplan: 3 to add", "looks good", "<!-- mergeway:preview:prod -->\nprod plan"]


def test_unchanged_body_is_not_rewritten(forge_sim: SimHarness, repo: SimRepo, pr: SimPR) -> None:
    forge = forge_sim.forge(repo)
    forge.upsert_comment(pr.number, MARKER, "same")
    writes_before = len([r for r in forge_sim.api_requests(repo.forge) if r.method in ("POST", "PATCH", "PUT")])
    forge.upsert_comment(pr.number, MARKER, "same")
    writes_after = len([r for r in forge_sim.api_requests(repo.forge) if r.method in ("POST", "PATCH", "PUT")])
    assert writes_after == writes_before


def test_two_concurrent_upserts_without_a_lock_converge_to_one_comment(
    forge_sim: SimHarness, repo: SimRepo, pr: SimPR
) -> None:
    # Hold each job's first listing, after the forge answered, until both have listed: both saw no
    # comment and both create one. Held in the client, so no other traffic on the forge can take a turn.
    listed = threading.Barrier(2, timeout=30)

    def job(text: str) -> None:
        forge = forge_sim.forge(repo)
        real_list = forge.list_comments
        calls = 0

        def list_then_wait(number: int) -> list[CommentRef]:
            nonlocal calls
            calls += 1
            found = real_list(number)
            if calls == 1:
                listed.wait()
            return found

        forge.list_comments = list_then_wait  # type: ignore[method-assign]
        forge.upsert_comment(pr.number, MARKER, text)

    run_concurrently([lambda i=i: job(f"from job {i}") for i in range(2)])
    creates = forge_sim.api_requests(repo.forge, method="POST", path=r"/(comments|notes)$")
    assert len(creates) == 2, "both jobs created a comment: the race really happened"
    comments = forge_sim.list_comments(repo, pr.number)
    assert len(comments) == 1
    assert comments[0].body in (f"{MARKER}\nfrom job 0", f"{MARKER}\nfrom job 1")


def test_concurrent_upserts_with_a_lock_never_duplicate(forge_sim: SimHarness, repo: SimRepo, pr: SimPR) -> None:
    lock = threading.Lock()

    @contextmanager
    def held() -> Iterator[None]:
        with lock:
            yield

    def factory() -> AbstractContextManager[None]:
        return held()

    def job(i: int) -> None:
        forge_sim.forge(repo).upsert_comment(pr.number, MARKER, f"job {i}", lock=factory)

    run_concurrently([lambda i=i: job(i) for i in range(4)])
    assert len(forge_sim.list_comments(repo, pr.number)) == 1
    assert len(forge_sim.api_requests(repo.forge, method="POST", path=r"/(comments|notes)$")) == 1
    assert not forge_sim.api_requests(repo.forge, method="DELETE")


def test_existing_duplicates_are_removed_keeping_the_oldest(forge_sim: SimHarness, repo: SimRepo, pr: SimPR) -> None:
    for i in range(3):
        forge_sim.core_add_comment(repo, pr.number, f"{MARKER}\nold {i}", "mergeway-bot")
    oldest = forge_sim.list_comments(repo, pr.number)[0]
    kept = forge_sim.forge(repo).upsert_comment(pr.number, MARKER, "fresh")
    comments = forge_sim.list_comments(repo, pr.number)
    assert [c.id for c in comments] == [oldest.id] == [kept.id]
    assert comments[0].body == f"{MARKER}\nfresh"


def test_comment_over_the_limit_is_never_sent(forge_sim: SimHarness, repo: SimRepo, pr: SimPR) -> None:
    forge = forge_sim.forge(repo)
    expected = 65_536 if repo.forge == "github" else 1_000_000
    assert forge.comment_limit == expected
    with pytest.raises(CommentTooLongError) as err:
        forge.upsert_comment(pr.number, MARKER, "x" * forge.comment_limit)
    assert err.value.limit == expected
    assert str(expected) in str(err.value)
    assert not forge_sim.api_requests(repo.forge, method="POST", path=r"/(comments|notes)$")
    # exactly at the limit is fine
    body = "y" * (forge.comment_limit - len(MARKER) - 1)
    forge.upsert_comment(pr.number, MARKER, body)
    assert len(forge_sim.list_comments(repo, pr.number)[0].body) == forge.comment_limit


# -- statuses and reactions ----------------------------------------------------------------------------


def test_a_comment_is_read_back_by_id_only_on_its_own_pull_request(
    forge_sim: SimHarness, repo: SimRepo, pr: SimPR
) -> None:
    forge = forge_sim.forge(repo)
    other = forge_sim.open_pr(repo, "other", files={"deploy/other.yaml": "kind: ConfigMap\n"})
    written = forge_sim.comment(repo, pr, "/rollback", author="alice")
    found = forge.get_comment(pr.number, written.id)
    assert found is not None and (found.id, found.author, found.body) == (written.id, "alice", "/rollback")
    assert found.author_id == forge_sim.user(repo.forge, "alice").id
    assert forge.get_comment(other.number, written.id) is None  # exists, but on another pull request
    assert forge.get_comment(pr.number, written.id + 10_000) is None


def test_who_added_a_label_is_read_from_the_label_events(forge_sim: SimHarness, repo: SimRepo, pr: SimPR) -> None:
    forge = forge_sim.forge(repo)
    assert forge.label_added_by(pr.number, "mergeway/allow-destructive") == ""
    forge_sim.label(repo, pr, "mergeway/allow-destructive", by="trish")
    forge_sim.label(repo, pr, "other", by="carol")
    assert forge.label_added_by(pr.number, "mergeway/allow-destructive") == "trish"
    forge_sim.unlabel(repo, pr, "mergeway/allow-destructive", by="carol")
    assert forge.label_added_by(pr.number, "mergeway/allow-destructive") == "trish"  # a removal adds nobody
    forge_sim.label(repo, pr, "mergeway/allow-destructive", by="carol")
    assert forge.label_added_by(pr.number, "mergeway/allow-destructive") == "carol"  # the latest addition


def test_commit_statuses(forge_sim: SimHarness, repo: SimRepo, pr: SimPR) -> None:
    forge = forge_sim.forge(repo)
    context = "mergeway/preview/staging"
    forge.set_status(pr.head_sha, "pending", context, "Previewing…", "https://mergeway.example/runs/1")
    forge.set_status(pr.head_sha, "pending", context, "Previewing…")  # a re-run job: harmless on both forges
    forge.set_status(pr.head_sha, "success", context, "d" * 300)
    latest = forge_sim.latest_status(repo, pr.head_sha, context)
    assert latest is not None
    assert latest.state == "success"
    assert len(latest.description) == 140 and latest.description.endswith("…")
    first = forge_sim.list_statuses(repo, pr.head_sha, context)[0]
    assert first.state == "pending" and first.target_url == "https://mergeway.example/runs/1"
    forge.set_status(pr.head_sha, "error", "mergeway/deploy/prod", "cluster unreachable")
    failed = forge_sim.latest_status(repo, pr.head_sha, "mergeway/deploy/prod")
    assert failed is not None
    assert failed.state == ("error" if repo.forge == "github" else "failed")
    forge.set_status(pr.head_sha, "failure", "mergeway/deploy/prod", "rollout failed")
    failed = forge_sim.latest_status(repo, pr.head_sha, "mergeway/deploy/prod")
    assert failed is not None and failed.state == ("failure" if repo.forge == "github" else "failed")
    with pytest.raises(ValueError):
        forge.set_status(pr.head_sha, "done", context)  # type: ignore[arg-type]


def test_status_on_unknown_commit_is_a_clear_error(forge_sim: SimHarness, repo: SimRepo) -> None:
    # GitHub answers 422 "No commit found", GitLab 404: each becomes the matching forge error.
    expected = ForgeValidationError if repo.forge == "github" else ForgeNotFoundError
    with pytest.raises(expected) as err:
        forge_sim.forge(repo).set_status("0" * 40, "pending", "mergeway/preview/x")
    message = str(err.value)
    assert "could not set status mergeway/preview/x on commit 000000000000" in message
    assert repo.full_name in message


def test_reactions(forge_sim: SimHarness, repo: SimRepo, pr: SimPR) -> None:
    command = forge_sim.comment(repo, pr, "/rollback", author="alice")
    forge = forge_sim.forge(repo)
    forge.add_reaction(pr.number, command.id, "eyes")
    forge.add_reaction(pr.number, command.id, "eyes")  # repeated: still one
    forge.add_reaction(pr.number, command.id, "+1")
    reactions = forge_sim.list_reactions(repo, command.id)
    names = sorted(r.content for r in reactions)
    assert names == (["+1", "eyes"] if repo.forge == "github" else ["eyes", "thumbsup"])
    assert {r.user for r in reactions} == {"mergeway-bot"}


# -- permissions ----------------------------------------------------------------------------------------


def test_permissions(forge_sim: SimHarness, repo: SimRepo) -> None:
    roles = {
        "github": {
            "ada": ("admin", Permission.ADMIN),
            "max": ("maintain", Permission.WRITE),
            "wes": ("write", Permission.WRITE),
            "tia": ("triage", Permission.READ),
            "rui": ("read", Permission.READ),
        },
        "gitlab": {
            "ada": ("owner", Permission.ADMIN),
            "max": ("maintainer", Permission.ADMIN),
            "wes": ("developer", Permission.WRITE),
            "tia": ("reporter", Permission.READ),
            "rui": ("guest", Permission.READ),
        },
    }[repo.forge]
    for login, (role, _) in roles.items():
        forge_sim.set_permission(repo, login, role)
    forge_sim.add_user(repo.forge, "stranger")
    forge = forge_sim.forge(repo)
    for login, (_, expected) in roles.items():
        assert forge.get_permission(login) is expected, login
    assert forge.get_permission("stranger") is Permission.NONE
    assert forge.get_permission("no-such-user") is Permission.NONE
    assert forge.get_permission("wes").can_write
    assert not forge.get_permission("tia").can_write
    assert not Permission.NONE.can_write and Permission.ADMIN.can_write


# -- pull requests --------------------------------------------------------------------------------------


def test_open_and_find_pull_request(forge_sim: SimHarness, repo: SimRepo) -> None:
    forge = forge_sim.forge(repo)
    assert forge.find_open_pull_request("mergeway/revert-1-abc1234") is None
    forge_sim.commit(
        repo, "mergeway/revert-1-abc1234", {"deploy/app.yaml": "kind: ConfigMap\n# reverted\n"}, message="Revert"
    )
    info = forge.open_pull_request(
        "mergeway/revert-1-abc1234", repo.default_branch, 'Revert "Change app"', "Reverts #1, requested by @alice"
    )
    assert info.state == "open" and not info.merged
    assert info.head_ref == "mergeway/revert-1-abc1234" and info.base_ref == "main"
    assert info.head_sha == forge_sim.head(repo, "mergeway/revert-1-abc1234")
    assert info.author == "mergeway-bot"
    assert info.url.startswith(repo.web_url)
    sim_pr = forge_sim.pr(repo, info.number)
    assert sim_pr.title == 'Revert "Change app"' and "requested by @alice" in sim_pr.body
    # opening again (a re-run job) returns the same PR instead of failing or duplicating
    again = forge.open_pull_request("mergeway/revert-1-abc1234", "main", 'Revert "Change app"', "")
    assert again.number == info.number
    found = forge.find_open_pull_request("mergeway/revert-1-abc1234")
    assert found is not None and found.number == info.number
    assert len(forge_sim.list_prs(repo)) == 1
    hooks = forge_sim.deliveries(repo.forge, "pull_request" if repo.forge == "github" else "Merge Request Hook")
    assert [d.action for d in hooks] == ["opened" if repo.forge == "github" else "open"]
    # a closed PR is not "open"
    forge_sim.close(repo, info.number)
    assert forge.find_open_pull_request("mergeway/revert-1-abc1234") is None


@pytest.mark.parametrize("method", ["merge", "squash", "rebase"])
def test_merged_pull_request_reports_merge_commit_and_method(forge_sim: SimHarness, repo: SimRepo, method: str) -> None:
    pr = forge_sim.open_pr(repo, "feature", files={"a.yaml": "1"}, title="Two commits")
    forge_sim.push(repo, pr, {"b.yaml": "2"}, message="second")
    forge_sim.commit(repo, "main", {"other.yaml": "x"}, message="unrelated")  # so rebase/merge differ
    forge = forge_sim.forge(repo)
    open_info = forge.get_pull_request(pr.number)
    assert open_info.merge_method is None and open_info.merge_commit_sha is None
    forge_sim.merge(repo, pr, method=method)
    info = forge.get_pull_request(pr.number)
    assert info.merged and info.state == "merged"
    assert info.merge_method == method
    assert info.merge_commit_sha == forge_sim.head(repo, "main")
    assert info.commit_count == 2
    parents = repo.git.commit_info(info.merge_commit_sha)["parents"]  # type: ignore[index]
    assert len(parents) == (2 if method == "merge" else 1)  # type: ignore[arg-type]
    assert info.as_event().merge_commit_sha == info.merge_commit_sha


def test_single_commit_squash_and_closed_unmerged(forge_sim: SimHarness, repo: SimRepo) -> None:
    forge = forge_sim.forge(repo)
    pr = forge_sim.open_pr(repo, "one", files={"a.yaml": "1"})
    forge_sim.merge(repo, pr, method="squash")
    assert forge.get_pull_request(pr.number).merge_method == "squash"
    other = forge_sim.open_pr(repo, "two", files={"b.yaml": "1"})
    forge_sim.close(repo, other)
    closed = forge.get_pull_request(other.number)
    assert closed.state == "closed" and not closed.merged and closed.merge_commit_sha is None


# -- errors -----------------------------------------------------------------------------------------------


def test_missing_pull_request_is_a_clear_404(forge_sim: SimHarness, repo: SimRepo) -> None:
    forge = forge_sim.forge(repo)
    with pytest.raises(ForgeNotFoundError) as err:
        forge.get_pull_request(99)
    message = str(err.value)
    assert "#99" in message or "!99" in message
    assert repo.full_name in message and "not found" in message.lower() and "404" in message
    with pytest.raises(ForgeNotFoundError):
        forge.upsert_comment(99, MARKER, "x")


def test_missing_repository_is_a_clear_404(forge_sim: SimHarness, forge_name: str) -> None:
    repo = forge_sim.create_repo(forge_name, "acme/exists")  # type: ignore[arg-type]
    ghost = forge_sim.repository(repo)
    import dataclasses

    ghost = dataclasses.replace(ghost, full_name="acme/ghost", project_id=None)
    from mergeway.forge import forge_for

    forge = forge_for(ghost, forge_sim.settings())
    with pytest.raises(ForgeNotFoundError) as err:
        forge.get_permission("alice")
    assert "acme/ghost" in str(err.value)
    with pytest.raises(ForgeNotFoundError) as err:
        forge.get_pull_request(1)
    message = str(err.value)
    assert "acme/ghost" in message
    assert ("pull request #1" if forge_name == "github" else "merge request !1") in message


def test_permission_denied_and_bad_credentials(forge_sim: SimHarness, repo: SimRepo, pr: SimPR) -> None:
    forge_sim.set_permission(repo, "reader", "read")
    reader = forge_sim.forge(
        repo, github_token=forge_sim.token_for("github", "reader"), gitlab_token=forge_sim.token_for("gitlab", "reader")
    )
    with pytest.raises(ForgePermissionError) as err:
        reader.set_status(pr.head_sha, "pending", "mergeway/preview/x")
    assert "403" in str(err.value) and repo.full_name in str(err.value)
    bad = forge_sim.forge(repo, github_token="ghp_" + "0" * 36, gitlab_token="glpat-" + "0" * 20)
    with pytest.raises(ForgeAuthError) as auth_err:
        bad.get_pull_request(pr.number)
    assert "401" in str(auth_err.value)
