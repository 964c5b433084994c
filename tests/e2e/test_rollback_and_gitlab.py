"""`/rollback` opens a revert PR (and only for those allowed); GitLab merge requests go through the
same preview and deploy flow."""

from __future__ import annotations

import pytest
from kubernetes import client as k8s

from tests.fixtures.e2e import Stack

pytestmark = pytest.mark.cluster
ROLLBACK = "<!-- mergeway:rollback -->"
GITLAB_NAME = "acme/platform/shop"


def cm(name: str, value: str) -> str:
    return f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  value: {value}\n"


def tree_of(repo, rev: str) -> str:
    """The tree id of a commit: equal trees mean exactly the same files."""
    return repo.git.git(["rev-parse", f"{rev}^{{tree}}"]).strip()


def revert_prs(stack: Stack, repo):
    return [p for p in stack.sim.list_prs(repo) if p.head_ref.startswith("mergeway/revert-")]


@pytest.mark.parametrize(
    ("forge", "method"),
    [("github", "merge"), ("github", "squash"), ("github", "rebase"), ("gitlab", "squash"), ("gitlab", "rebase")],
)
def test_rollback_opens_a_revert_pr_whose_merge_restores_the_previous_state(stack: Stack, forge: str, method: str):
    gitlab = forge == "gitlab"
    repo = stack.repo({"deploy/app.yaml": cm("app", "one")}, forge=forge, name=GITLAB_NAME if gitlab else "acme/shop")
    stack.sim.set_permission(repo, "alice", "developer" if gitlab else "write")
    pr = stack.sim.open_pr(
        repo,
        "two",
        files={"deploy/app.yaml": cm("app", "two"), "deploy/extra.yaml": cm("extra", "x")},
        title="Ship two",
    )
    stack.sim.merge(repo, pr, method=method)
    # What the merge made main (GitLab names a squash `squash_commit_sha`, a rebase neither).
    merged_sha = stack.sim.head(repo)
    assert stack.status(repo, merged_sha, "mergeway/deploy/staging").state == "success"
    core = k8s.CoreV1Api(stack.cluster.api_client())
    assert core.read_namespaced_config_map("app", stack.namespace).data == {"value": "two"}

    asked = stack.sim.comment(repo, pr, "/rollback", author="alice")
    [revert] = stack.wait(lambda: revert_prs(stack, repo), timeout=60, message="the revert PR")
    assert revert.title == 'Revert "Ship two"'
    assert f"#{pr.number}" in revert.body and "@alice" in revert.body
    reply = stack.wait(
        lambda: [c for c in stack.marked(repo, pr.number, ROLLBACK) if "opened" in c.body],
        timeout=30,
        message="the reply",
    )[0]
    link = f"{repo.web_url}/-/merge_requests/{revert.number}" if gitlab else f"{repo.web_url}/pull/{revert.number}"
    assert f"opened {link} to revert" in reply.body, reply.body
    assert any(r.content == "eyes" for r in stack.sim.list_reactions(repo, asked.id))

    # Asking again returns the same revert PR instead of opening another.
    stack.sim.comment(repo, pr, "/rollback", author="alice")
    stack.wait(
        lambda: any("already open" in c.body for c in stack.marked(repo, pr.number, ROLLBACK)),
        timeout=30,
        message="the repeat reply",
    )
    assert len(revert_prs(stack, repo)) == 1

    preview = stack.status(repo, revert.head_sha, "mergeway/preview/staging")
    assert preview.description.startswith("0 to add, 1 to change, 1 to prune")
    stack.sim.merge(repo, revert)
    revert_sha = stack.sim.pr(repo, revert.number).merge_commit_sha
    assert stack.status(repo, revert_sha, "mergeway/deploy/staging").state == "success"
    assert core.read_namespaced_config_map("app", stack.namespace).data == {"value": "one"}
    names = {c.metadata.name for c in core.list_namespaced_config_map(stack.namespace).items}
    assert "extra" not in names


def test_rolling_back_the_pr_that_added_an_app_prunes_it(stack: Stack):
    # The revert deletes deploy/ entirely (git keeps no empty directories): an empty environment.
    repo = stack.repo()
    stack.sim.set_permission(repo, "alice", "write")
    pr = stack.sim.open_pr(repo, "app", files={"deploy/a.yaml": cm("a", "one"), "deploy/b.yaml": cm("b", "one")})
    stack.sim.merge(repo, pr)
    deployed = stack.status(repo, stack.sim.pr(repo, pr.number).merge_commit_sha, "mergeway/deploy/staging")
    assert deployed.state == "success", deployed.description
    stack.sim.comment(repo, pr, "/rollback", author="alice")
    [revert] = stack.wait(lambda: revert_prs(stack, repo), timeout=60, message="the revert PR")
    preview = stack.status(repo, revert.head_sha, "mergeway/preview/staging")
    assert preview.state == "success" and preview.description.startswith("0 to add, 0 to change, 2 to prune")
    body = stack.only_comment(repo, revert.number, "<!-- mergeway:preview:staging -->").body
    assert "the environment is empty" in body
    stack.sim.merge(repo, revert)
    status = stack.status(repo, stack.sim.pr(repo, revert.number).merge_commit_sha, "mergeway/deploy/staging")
    assert status.state == "success" and "2 pruned" in status.description
    names = {
        c.metadata.name
        for c in k8s.CoreV1Api(stack.cluster.api_client()).list_namespaced_config_map(stack.namespace).items
    }
    assert not names & {"a", "b"}

    # Rolling back the rollback: `/rollback` on the merged revert PR opens a revert of the revert,
    # whose merge brings the app back as it was.
    stack.sim.comment(repo, revert, "/rollback", author="alice")
    [again] = stack.wait(
        lambda: [p for p in revert_prs(stack, repo) if p.number != revert.number],
        timeout=60,
        message="the revert of the revert",
    )
    assert f"#{revert.number}" in again.body
    preview = stack.status(repo, again.head_sha, "mergeway/preview/staging")
    assert preview.state == "success" and preview.description.startswith("2 to add, 0 to change, 0 to prune")
    stack.sim.merge(repo, again)
    restored = stack.status(repo, stack.sim.pr(repo, again.number).merge_commit_sha, "mergeway/deploy/staging")
    assert restored.state == "success", restored.description
    core = k8s.CoreV1Api(stack.cluster.api_client())
    for name in ("a", "b"):
        assert core.read_namespaced_config_map(name, stack.namespace).data == {"value": "one"}
    assert tree_of(repo, stack.sim.head(repo)) == tree_of(repo, stack.sim.pr(repo, pr.number).merge_commit_sha)


def test_rollback_is_refused_for_readers_and_unmerged_prs(stack: Stack):
    repo = stack.repo({"deploy/app.yaml": cm("app", "one")})
    stack.sim.set_permission(repo, "rita", "read")
    stack.sim.set_permission(repo, "alice", "write")
    merged = stack.sim.open_pr(repo, "two", files={"deploy/app.yaml": cm("app", "two")})
    stack.sim.merge(repo, merged)
    stack.sim.comment(repo, merged, "/rollback", author="rita")
    reply = stack.wait(lambda: stack.marked(repo, merged.number, ROLLBACK), timeout=60, message="a reply")[0]
    assert "only users with write access" in reply.body and "@rita" in reply.body

    open_pr = stack.sim.open_pr(repo, "three", files={"deploy/app.yaml": cm("app", "three")})
    stack.sim.comment(repo, open_pr, "/rollback", author="alice")
    reply = stack.wait(lambda: stack.marked(repo, open_pr.number, ROLLBACK), timeout=60, message="a reply")[0]
    assert "merged pull requests only" in reply.body
    assert revert_prs(stack, repo) == []


def test_help_and_preview_commands(stack: Stack):
    repo = stack.repo({"deploy/app.yaml": cm("app", "one")})
    pr = stack.sim.open_pr(repo, "two", files={"deploy/app.yaml": cm("app", "two")})
    first_preview = stack.status(repo, pr.head_sha, "mergeway/preview/staging")
    assert first_preview.state == "success", first_preview.description
    stack.sim.comment(repo, pr, "/help", author="alice")
    reply = stack.wait(lambda: stack.marked(repo, pr.number, "<!-- mergeway:help -->"), timeout=60, message="help")[0]
    assert "`/rollback`" in reply.body and "`/preview`" in reply.body
    before = len(stack.sim.list_statuses(repo, pr.head_sha, "mergeway/preview/staging"))
    stack.sim.comment(repo, pr, "/preview staging", author="alice")
    stack.wait(
        lambda: len(stack.sim.list_statuses(repo, pr.head_sha, "mergeway/preview/staging")) >= before + 2,
        timeout=60,
        message="a second preview run",
    )
    assert stack.status(repo, pr.head_sha, "mergeway/preview/staging").state == "success"
    assert len(stack.marked(repo, pr.number, "<!-- mergeway:preview:staging -->")) == 1


def test_gitlab_merge_request_is_previewed_and_deployed(stack: Stack):
    repo = stack.repo({"deploy/app.yaml": cm("app", "one")}, forge="gitlab", name="acme/platform/shop")
    mr = stack.sim.open_pr(repo, "two", files={"deploy/app.yaml": cm("app", "two")}, title="Two")
    preview = stack.status(repo, mr.head_sha, "mergeway/preview/staging")
    assert preview.state == "success", preview.description
    assert preview.description.startswith("1 to add")
    body = stack.only_comment(repo, mr.number, "<!-- mergeway:preview:staging -->").body
    assert f"`ConfigMap/{stack.namespace}/app`" in body
    # `main` moves on (another change lands); the next push is previewed as the merge into it.
    stack.sim.commit(repo, "main", {"deploy/other.yaml": cm("other", "x")})
    main = stack.sim.head(repo)
    head = stack.sim.push(repo, mr, {"notes.txt": "again\n"})
    again = stack.status(repo, head, "mergeway/preview/staging")
    assert again.state == "success" and again.description.startswith("2 to add"), again.description
    body = stack.only_comment(repo, mr.number, "<!-- mergeway:preview:staging -->").body
    assert f"Rendered from the merge of this pull request into `main` ({main})" in body, body
    stack.sim.merge(repo, mr)
    merged = stack.sim.pr(repo, mr.number)
    # A merge commit (the default merge method): GitLab names it, and the deploy reports on it.
    assert merged.merge_commit_sha and merged.merge_commit_sha == stack.sim.head(repo)
    assert stack.status(repo, merged.merge_commit_sha, "mergeway/deploy/staging").state == "success"
    core = k8s.CoreV1Api(stack.cluster.api_client())
    assert core.read_namespaced_config_map("app", stack.namespace).data == {"value": "two"}
    assert core.read_namespaced_config_map("other", stack.namespace).data == {"value": "x"}


def test_rollback_of_a_multi_commit_rebase_merge_reverts_every_commit(stack: Stack):
    repo = stack.repo({"deploy/app.yaml": cm("app", "one")})
    stack.sim.set_permission(repo, "alice", "write")
    pr = stack.sim.open_pr(repo, "three-steps", files={"deploy/app.yaml": cm("app", "two")}, title="Three steps")
    stack.sim.push(repo, pr, {"deploy/extra.yaml": cm("extra", "x")})
    stack.sim.push(repo, pr, {"deploy/app.yaml": cm("app", "three")})
    before = stack.sim.head(repo)
    stack.sim.merge(repo, pr, method="rebase")
    merged = stack.sim.pr(repo, pr.number)
    assert len(stack.sim.pr_commits(merged)) == 3
    assert stack.status(repo, merged.merge_commit_sha, "mergeway/deploy/staging").state == "success"

    stack.sim.comment(repo, pr, "/rollback", author="alice")
    [revert] = stack.wait(lambda: revert_prs(stack, repo), timeout=60, message="the revert PR")
    # One revert commit that takes the tree back to exactly what main was before the three commits.
    assert tree_of(repo, revert.head_sha) == tree_of(repo, before), "the revert left part of the PR in place"
    assert tree_of(repo, f"{revert.head_sha}~1") == tree_of(repo, merged.merge_commit_sha)  # one commit on top
    stack.sim.merge(repo, revert)
    status = stack.status(repo, stack.sim.pr(repo, revert.number).merge_commit_sha, "mergeway/deploy/staging")
    assert status.state == "success", status.description
    core = k8s.CoreV1Api(stack.cluster.api_client())
    assert core.read_namespaced_config_map("app", stack.namespace).data == {"value": "one"}
    assert "extra" not in {c.metadata.name for c in core.list_namespaced_config_map(stack.namespace).items}


def test_gitlab_rollback_and_preview_commands(stack: Stack):
    repo = stack.repo({"deploy/app.yaml": cm("app", "one")}, forge="gitlab", name="acme/platform/shop")
    stack.sim.set_permission(repo, "alice", "developer")
    mr = stack.sim.open_pr(repo, "two", files={"deploy/app.yaml": cm("app", "two")}, title="Two")
    assert stack.status(repo, mr.head_sha, "mergeway/preview/staging").state == "success"
    before = len(stack.sim.list_statuses(repo, mr.head_sha, "mergeway/preview/staging"))
    stack.sim.comment(repo, mr, "/preview", author="alice")
    stack.wait(
        lambda: len(stack.sim.list_statuses(repo, mr.head_sha, "mergeway/preview/staging")) >= before + 2,
        message="a second preview run on the merge request",
    )
    assert stack.status(repo, mr.head_sha, "mergeway/preview/staging").state == "success"
    assert len(stack.marked(repo, mr.number, "<!-- mergeway:preview:staging -->")) == 1

    stack.sim.merge(repo, mr)
    merged = stack.sim.pr(repo, mr.number)
    assert stack.status(repo, merged.merge_commit_sha, "mergeway/deploy/staging").state == "success"
    stack.sim.comment(repo, mr, "/rollback", author="alice")
    [revert] = stack.wait(lambda: revert_prs(stack, repo), timeout=60, message="the revert merge request")
    assert revert.title == 'Revert "Two"'
    reply = stack.wait(
        lambda: [c for c in stack.marked(repo, mr.number, ROLLBACK) if "opened" in c.body], message="the reply"
    )[0]
    assert f"opened {repo.web_url}/-/merge_requests/{revert.number} to revert" in reply.body, reply.body
    assert stack.status(repo, revert.head_sha, "mergeway/preview/staging").description.startswith(
        "0 to add, 1 to change"
    )
    stack.sim.merge(repo, revert)
    reverted = stack.sim.pr(repo, revert.number)
    assert stack.status(repo, reverted.merge_commit_sha, "mergeway/deploy/staging").state == "success"
    core = k8s.CoreV1Api(stack.cluster.api_client())
    assert core.read_namespaced_config_map("app", stack.namespace).data == {"value": "one"}
