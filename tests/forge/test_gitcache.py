"""The checkout cache: exact SHAs, force-pushes, deleted branches, concurrency, incremental fetches."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from mergeway.events import Repository
from mergeway.git import CheckoutCache, CheckoutError, GitError, GitTimeoutError, run_git
from mergeway.git.run import base_env
from tests.fixtures.forgesim import SimHarness
from tools.forgesim import SimRepo

NAMES = {"github": "acme/manifests", "gitlab": "platform/team/manifests"}


@pytest.fixture(params=["github", "gitlab"])
def repo(request: pytest.FixtureRequest, forge_sim: SimHarness) -> SimRepo:
    return forge_sim.create_repo(request.param, NAMES[request.param], {"deploy/app.yaml": "v: 0\n"})


@pytest.fixture
def cache(forge_sim: SimHarness) -> CheckoutCache:
    return CheckoutCache.from_settings(forge_sim.settings())


def _head(tree: Path) -> str:
    return run_git(["rev-parse", "HEAD"], cwd=tree, env=base_env()).stdout.strip()


def _clean(tree: Path) -> bool:
    return run_git(["status", "--porcelain"], cwd=tree, env=base_env()).stdout.strip() == ""


def test_checkout_follows_pushes_and_force_pushes(forge_sim: SimHarness, repo: SimRepo, cache: CheckoutCache) -> None:
    target = forge_sim.repository(repo)
    pr = forge_sim.open_pr(repo, "feature", files={"deploy/app.yaml": "v: 1\n"})
    shas = [pr.head_sha]
    shas.append(forge_sim.push(repo, pr, {"deploy/extra.yaml": "x: 1\n"}))
    shas.append(forge_sim.force_push_pr(repo, pr, {"deploy/app.yaml": "v: 3\n"}))
    expected = [("v: 1\n", False), ("v: 1\n", True), ("v: 3\n", False)]
    # check out in push order, each time right after the push would have been noticed...
    for sha, (app, extra) in zip(shas, expected, strict=True):
        with cache.checkout(target, sha, pr.number) as tree:
            assert _head(tree) == sha
            assert (tree / "deploy/app.yaml").read_text() == app
            assert (tree / "deploy/extra.yaml").exists() is extra
            assert _clean(tree)
            (tree / "scratch.txt").write_text("a job's leftovers")
        assert not tree.exists(), "the worktree is removed after the job"
    # ...and an older SHA again: a job for an earlier push still gets exactly its commit
    with cache.checkout(target, shas[1], pr.number) as tree:
        assert _head(tree) == shas[1] and not (tree / "scratch.txt").exists()


def test_force_pushed_commit_fetched_cold_by_sha(forge_sim: SimHarness, repo: SimRepo, cache: CheckoutCache) -> None:
    """A job for a push that was force-pushed away before any fetch: the commit is fetched by id."""
    pr = forge_sim.open_pr(repo, "feature", files={"deploy/app.yaml": "v: 1\n"})
    lost = pr.head_sha
    forge_sim.force_push_pr(repo, pr, {"deploy/app.yaml": "v: 2\n"})
    with cache.checkout(forge_sim.repository(repo), lost, pr.number) as tree:
        assert _head(tree) == lost and (tree / "deploy/app.yaml").read_text() == "v: 1\n"


def test_unknown_commit_is_a_clear_error(forge_sim: SimHarness, repo: SimRepo, cache: CheckoutCache) -> None:
    with pytest.raises(CheckoutError) as err, cache.checkout(forge_sim.repository(repo), "1" * 40):
        pass
    assert "1111111111" in str(err.value) and repo.full_name in str(err.value)
    with pytest.raises(CheckoutError), cache.checkout(forge_sim.repository(repo), "main"):
        pass


def test_deleted_and_force_pushed_branches_are_mirrored(
    forge_sim: SimHarness, repo: SimRepo, cache: CheckoutCache
) -> None:
    target = forge_sim.repository(repo)
    forge_sim.commit(repo, "topic", {"t": "1"})
    old_main = forge_sim.head(repo)
    cache.fetch(target)
    mirror = cache.mirror_path(target)
    refs = run_git(["--git-dir", str(mirror), "for-each-ref", "--format=%(refname)"], env=base_env()).stdout
    assert "refs/heads/topic" in refs
    forge_sim.delete_branch(repo, "topic")
    new_main = forge_sim.force_push(repo, "main", {"deploy/app.yaml": "rewritten\n"}, onto=None)
    assert cache.branch_head(target, "main") == new_main != old_main
    refs = run_git(["--git-dir", str(mirror), "for-each-ref", "--format=%(refname)"], env=base_env()).stdout
    assert "refs/heads/topic" not in refs
    with pytest.raises(CheckoutError):
        cache.branch_head(target, "topic")


def test_concurrent_checkouts_of_one_repository(forge_sim: SimHarness, repo: SimRepo, tmp_path: Path) -> None:
    target = forge_sim.repository(repo)
    shas = [forge_sim.commit(repo, f"branch-{i}", {"n.txt": f"{i}\n"}) for i in range(6)]
    caches = [CheckoutCache.from_settings(forge_sim.settings(cache_dir=tmp_path / "shared")) for _ in shas]
    results: dict[int, str] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(len(shas))

    def job(i: int) -> None:
        try:
            start.wait(timeout=30)
            with caches[i].checkout(target, shas[i]) as tree:
                results[i] = (tree / "n.txt").read_text()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=job, args=(i,)) for i in range(len(shas))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert results == {i: f"{i}\n" for i in range(len(shas))}
    listing = run_git(["--git-dir", str(caches[0].mirror_path(target)), "worktree", "list"], env=base_env()).stdout
    assert len(listing.strip().splitlines()) == 1, "only the bare mirror itself is left"


def test_revert_and_push_from_a_worktree(forge_sim: SimHarness, repo: SimRepo, cache: CheckoutCache) -> None:
    target = forge_sim.repository(repo)
    pr = forge_sim.open_pr(repo, "feature", files={"deploy/app.yaml": "v: 1\n"})
    merged = forge_sim.merge(repo, pr, method="merge")
    assert merged.merge_commit_sha is not None
    with cache.checkout(target, merged.merge_commit_sha) as tree:
        cache.git(target, tree, "revert", "--no-edit", "-m", "1", merged.merge_commit_sha)
        cache.push(target, tree, "mergeway/revert-1-abc1234")
        reverted = _head(tree)
    assert forge_sim.head(repo, "mergeway/revert-1-abc1234") == reverted
    info = forge_sim.forge(repo).open_pull_request("mergeway/revert-1-abc1234", "main", 'Revert "x"')
    assert info.head_sha == reverted


def test_fetch_is_incremental_on_a_1000_commit_repository(forge_sim: SimHarness, cache: CheckoutCache) -> None:
    repo = forge_sim.create_repo("github", "acme/big")
    forge_sim.add_history(repo, 1000)
    pr = forge_sim.open_pr(repo, "feature", files={"deploy/app.yaml": "v: 1\n"})
    target = forge_sim.repository(repo)

    def upload_pack_bytes() -> int:
        return sum(r.bytes_out for r in forge_sim.git_requests(repo) if r.path.endswith("git-upload-pack"))

    first = cache.fetch(target, pr_number=pr.number)
    first_bytes = upload_pack_bytes()
    with cache.checkout(target, pr.head_sha, pr.number) as tree:
        assert _head(tree) == pr.head_sha
    assert upload_pack_bytes() == first_bytes, "the commit was already there: no second fetch"
    new_sha = forge_sim.push(repo, pr, {"deploy/app.yaml": "v: 2\n"})
    second = cache.fetch(target, pr_number=pr.number)
    second_bytes = upload_pack_bytes() - first_bytes
    with cache.checkout(target, new_sha, pr.number) as tree:
        assert _head(tree) == new_sha
    count = run_git(
        ["--git-dir", str(cache.mirror_path(target)), "rev-list", "--count", "--all"], env=base_env()
    ).stdout.strip()
    print(
        f"\nfetch of a {count}-commit repository: first {first.seconds * 1000:.0f} ms / {first_bytes} bytes; "
        f"after one new commit: {second.seconds * 1000:.0f} ms / {second_bytes} bytes"
    )
    assert int(count) >= 1002
    # Bytes are the robust measure; times are printed (both are dominated by process start-up here).
    assert second_bytes * 20 < first_bytes, "the second fetch transferred only the new objects"


def test_git_failures_and_timeouts(forge_sim: SimHarness, repo: SimRepo, tmp_path: Path) -> None:
    bad = CheckoutCache(
        tmp_path / "bad",
        lambda r: forge_sim.forge(
            repo, github_token="ghp_" + "9" * 36, gitlab_token="glpat-" + "9" * 20
        ).git_credentials(),
    )
    with pytest.raises(GitError) as err:
        bad.fetch(forge_sim.repository(repo))
    assert "9999999999" not in str(err.value)
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    fake = fake_bin / "git"
    fake.write_text("#!/bin/sh\nsleep 30\n")
    fake.chmod(0o755)
    env = {**base_env(), "PATH": f"{fake_bin}{os.pathsep}{os.environ.get('PATH', '')}"}
    with pytest.raises(GitTimeoutError) as timeout:
        run_git(["fetch"], env=env, timeout=0.5)
    assert "timed out" in str(timeout.value)
    with pytest.raises(ValueError):
        run_git(["fetch", "https://x:secret-token-123@example.invalid/r.git"], secrets=["secret-token-123"])


def test_clone_url_with_credentials_is_refused(forge_sim: SimHarness, tmp_path: Path) -> None:
    repo = Repository(forge="github", full_name="acme/x", clone_url="https://user:pw@example.invalid/acme/x.git")
    cache = CheckoutCache(tmp_path / "c", lambda r: None)
    with pytest.raises(CheckoutError):
        cache.fetch(repo)
