"""The drift issue through the real chain: merge → deploy → a change by hand → a check → the issue → a fix.

The forge simulator, the web service, a worker, Redis and the local cluster. Checks are started by
``/drift`` on the merged pull request (the scheduler's path is :mod:`tests.e2e.test_drift`'s); the
issue is then Mergeway's, on the repository: one per environment, naming the object, the field and
who changed it; closed when the drift is fixed by hand; ``/revert-drift`` on it restores Git's
value; ``/adopt-drift`` opens a pull request whose diff sets the live value and whose preview shows
no change; ``self_heal: true`` restores without a command. GitLab takes the same path.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml
from kubernetes import client as k8s

from tests.fixtures.e2e import Stack, StackFactory, diff_lines
from tests.fixtures.services import ServiceProcess
from tools.forgesim import SimIssue, SimRepo

pytestmark = pytest.mark.cluster
DEPLOY = "mergeway/deploy/staging"
PREVIEW = "mergeway/preview/staging"
GITLAB_NAME = "acme/platform/shop"


def web_deployment(replicas: int = 1) -> str:
    labels = {"app": "web"}
    return "# The shop's web tier.\n" + yaml.safe_dump(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web"},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"containers": [{"name": "app", "image": "example.com/web:1"}]},
                },
            },
        },
        sort_keys=False,
    )


SETTINGS = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  a: '1'\n"


def deployed(
    stack: Stack, *, forge: str = "github", self_heal: bool = False, extra: dict[str, str] | None = None
) -> tuple[SimRepo, int]:
    """A repository whose ``staging`` runs Deployment/web with 1 replica; the merged pull request's number."""
    gitlab = forge == "gitlab"
    env = {"name": "staging", "path": "deploy", "cluster": "local", "namespace": stack.namespace}
    if self_heal:
        env["self_heal"] = True
    repo = stack.repo(forge=forge, name=GITLAB_NAME if gitlab else "acme/shop", environments=[env])
    stack.sim.set_permission(repo, "alice", "developer" if gitlab else "write")
    pr = stack.sim.open_pr(repo, "web", files={"deploy/web.yaml": web_deployment(), **(extra or {})})
    stack.sim.merge(repo, pr)
    sha = stack.sim.pr(repo, pr.number).merge_commit_sha or stack.sim.head(repo)
    assert stack.status(repo, sha, DEPLOY, timeout=120).state == "success"
    return repo, pr.number


def kubectl(stack: Stack, *args: str) -> None:
    subprocess.run(
        [stack.cluster.kubectl, "-n", stack.namespace, *args],
        env=stack.cluster.env(),
        check=True,
        capture_output=True,
        timeout=60,
    )


def replicas(stack: Stack) -> int:
    apps = k8s.AppsV1Api(stack.cluster.api_client())
    return int(apps.read_namespaced_deployment("web", stack.namespace).spec.replicas)


def drift_issues(stack: Stack, repo: SimRepo) -> list[SimIssue]:
    return [i for i in stack.sim.list_issues(repo) if i.author == "mergeway-bot"]


def open_issue(stack: Stack, repo: SimRepo, number: int) -> SimIssue:
    """Ask for a check with ``/drift`` and wait for the one open drift issue."""
    stack.sim.comment(repo, number, "/drift", author="alice")
    return stack.wait(
        lambda: next((i for i in drift_issues(stack, repo) if i.state == "open"), None),
        timeout=90,
        message="an open drift issue",
    )


def closed(stack: Stack, repo: SimRepo, issue: SimIssue) -> SimIssue:
    return stack.wait(
        lambda: i if (i := stack.sim.issue(repo, issue.number)).state == "closed" else None,
        timeout=120,
        message=f"drift issue #{issue.number} closed",
    )


def test_scaled_by_hand_opens_one_issue_closed_when_fixed_by_hand_then_revert_drift_restores_git(
    stack: Stack,
) -> None:
    repo, number = deployed(stack)
    kubectl(stack, "scale", "deployment/web", "--replicas=3")
    issue = open_issue(stack, repo, number)
    assert issue.title == "Drift in staging"
    assert "<code>Deployment/web</code>: <code>/spec/replicas</code> live <code>3</code>, Git <code>1</code>" in (
        issue.body
    )
    assert "by <code>kubectl</code>" in issue.body and "/revert-drift" in issue.body and "/adopt-drift" in issue.body

    # Fixed by hand: the next check closes it, with a comment.
    kubectl(stack, "scale", "deployment/web", "--replicas=1")
    stack.sim.comment(repo, number, "/drift", author="alice")
    closed(stack, repo, issue)
    assert any("no drift left" in c.body for c in stack.sim.list_issue_comments(repo, issue.number))

    # Drift again: a new issue; /revert-drift on it re-applies the commit last applied.
    kubectl(stack, "scale", "deployment/web", "--replicas=4")
    again = open_issue(stack, repo, number)
    assert again.number != issue.number and len(drift_issues(stack, repo)) == 2
    stack.sim.issue_comment(repo, again, "/revert-drift", author="alice")
    closed(stack, repo, again)
    assert replicas(stack) == 1
    replies = [c.body for c in stack.sim.list_issue_comments(repo, again.number) if c.author == "mergeway-bot"]
    assert any("@alice re-applied" in r and "the cluster now matches it" in r for r in replies), replies


def test_revert_drift_needs_write_access(stack: Stack) -> None:
    repo, number = deployed(stack)
    kubectl(stack, "scale", "deployment/web", "--replicas=2")
    issue = open_issue(stack, repo, number)
    stack.sim.add_user("github", "bob")
    stack.sim.issue_comment(repo, issue, "/revert-drift", author="bob")
    stack.wait(
        lambda: any(
            "only users with write access" in c.body for c in stack.sim.list_issue_comments(repo, issue.number)
        ),
        timeout=60,
        message="the refusal",
    )
    assert replicas(stack) == 2 and stack.sim.issue(repo, issue.number).state == "open"


def test_adopt_drift_opens_a_pull_request_whose_preview_shows_no_change(stack: Stack) -> None:
    repo, number = deployed(stack)
    kubectl(stack, "scale", "deployment/web", "--replicas=3")
    issue = open_issue(stack, repo, number)
    stack.sim.issue_comment(repo, issue, "/adopt-drift", author="alice")
    adoption = stack.wait(
        lambda: next((p for p in stack.sim.list_prs(repo) if p.head_ref.startswith("mergeway/adopt-drift-")), None),
        timeout=90,
        message="the adoption pull request",
    )
    assert adoption.title == "Adopt the live state of staging" and f"#{issue.number}" in adoption.body
    changed = repo.git.git(["diff", f"{adoption.base_sha}..{adoption.head_sha}", "--", "deploy/web.yaml"])
    assert [line for line in changed.splitlines() if line.startswith(("-  ", "+  "))] == [
        "-  replicas: 1",
        "+  replicas: 3",
    ]
    assert "# The shop's web tier." in repo.git.git(["show", f"{adoption.head_sha}:deploy/web.yaml"])
    preview = stack.status(repo, adoption.head_sha, PREVIEW, timeout=120)
    assert preview.state == "success" and preview.description.startswith("0 to add, 0 to change"), preview.description
    comment = stack.only_comment(repo, adoption.number, "<!-- mergeway:preview:staging -->")
    assert not diff_lines(comment.body, "+") and not diff_lines(comment.body, "-")
    replies = [c.body for c in stack.sim.list_issue_comments(repo, issue.number) if c.author == "mergeway-bot"]
    assert any(f"/pull/{adoption.number}" in r for r in replies), replies


def test_adopt_drift_in_a_kustomize_environment_adds_a_patch_whose_preview_shows_no_change(stack: Stack) -> None:
    kustomization = "# staging overlay\nresources:\n  - web.yaml\n"
    repo, number = deployed(stack, extra={"deploy/kustomization.yaml": kustomization})
    kubectl(stack, "scale", "deployment/web", "--replicas=2")
    issue = open_issue(stack, repo, number)
    stack.sim.issue_comment(repo, issue, "/adopt-drift", author="alice")
    adoption = stack.wait(
        lambda: next((p for p in stack.sim.list_prs(repo) if p.head_ref.startswith("mergeway/adopt-drift-")), None),
        timeout=90,
        message="the adoption pull request",
    )
    files = repo.git.git(["diff", "--name-only", f"{adoption.base_sha}..{adoption.head_sha}"]).split()
    assert sorted(files) == ["deploy/drift-deployment-web.patch.yaml", "deploy/kustomization.yaml"]
    patch = yaml.safe_load(repo.git.git(["show", f"{adoption.head_sha}:deploy/drift-deployment-web.patch.yaml"]))
    assert patch == [{"op": "add", "path": "/spec/replicas", "value": 2}]
    preview = stack.status(repo, adoption.head_sha, PREVIEW, timeout=120)
    assert preview.state == "success" and preview.description.startswith("0 to add, 0 to change"), preview.description


def test_self_heal_restores_without_a_command_and_says_so_on_the_issue(stack: Stack) -> None:
    repo, number = deployed(stack, self_heal=True)
    kubectl(stack, "scale", "deployment/web", "--replicas=3")
    stack.sim.comment(repo, number, "/drift", author="alice")
    [issue] = stack.wait(lambda: drift_issues(stack, repo) or None, timeout=90, message="the drift issue")
    closed(stack, repo, issue)
    assert replicas(stack) == 1
    [closing] = [c.body for c in stack.sim.list_issue_comments(repo, issue.number)]
    assert "`self_heal` is on for `staging`" in closing and "no drift left" in closing


def test_gitlab_drift_issue_and_revert_drift(stack: Stack) -> None:
    repo, number = deployed(stack, forge="gitlab")
    kubectl(stack, "scale", "deployment/web", "--replicas=3")
    issue = open_issue(stack, repo, number)
    assert issue.title == "Drift in staging" and "<code>/spec/replicas</code> live <code>3</code>" in issue.body
    stack.sim.issue_comment(repo, issue, "/revert-drift", author="alice")
    closed(stack, repo, issue)
    assert replicas(stack) == 1
    replies = [c.body for c in stack.sim.list_issue_comments(repo, issue.number) if c.author == "mergeway-bot"]
    assert any("@alice re-applied" in r for r in replies), replies


def test_the_scheduler_opens_the_issue_by_itself_for_an_edit_and_a_deletion_and_revert_drift_undoes_both(
    make_stack: StackFactory,
) -> None:
    stack = make_stack(MERGEWAY_DRIFT_INTERVAL_SECONDS="2")
    repo, _ = deployed(stack, extra={"deploy/settings.yaml": SETTINGS})
    beat = ServiceProcess("beat", [sys.executable, "-m", "workers.beat"], stack.env, stack.services.workdir)
    beat.start()
    stack.services.started.append(beat)
    # `kubectl edit` with an "editor" that changes the image, as a person would in vi.
    subprocess.run(
        [stack.cluster.kubectl, "-n", stack.namespace, "edit", "deployment/web"],
        env={**stack.cluster.env(), "KUBE_EDITOR": "sed -i s#example.com/web:1#example.com/web:hotfix#"},
        check=True,
        capture_output=True,
        timeout=60,
    )
    kubectl(stack, "delete", "configmap/settings")
    issue = stack.wait(
        lambda: next((i for i in drift_issues(stack, repo) if "ConfigMap/settings" in i.body), None),
        timeout=90,
        message="the scheduled check's drift issue naming both objects",
    )
    assert "<code>ConfigMap/settings</code> was **deleted** from the cluster" in issue.body
    assert "live <code>example.com/web:hotfix</code>, Git <code>example.com/web:1</code>" in issue.body
    assert "by <code>kubectl-edit</code>" in issue.body
    assert len(drift_issues(stack, repo)) == 1  # later checks edit the same issue

    stack.sim.issue_comment(repo, issue, "/revert-drift", author="alice")
    closed(stack, repo, issue)
    core, apps = k8s.CoreV1Api(stack.cluster.api_client()), k8s.AppsV1Api(stack.cluster.api_client())
    assert core.read_namespaced_config_map("settings", stack.namespace).data == {"a": "1"}
    web = apps.read_namespaced_deployment("web", stack.namespace)
    assert web.spec.template.spec.containers[0].image == "example.com/web:1"
    assert len(drift_issues(stack, repo)) == 1
