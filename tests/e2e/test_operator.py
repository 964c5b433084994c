"""What the operator configures on the server, end to end: the policy, the health timeout, fork
previews and GitHub App credentials. Each test starts the chain with its own environment."""

from __future__ import annotations

import pytest
import yaml
from kubernetes import client as k8s

from tests.fixtures.e2e import StackFactory, slow_deployment

pytestmark = pytest.mark.cluster
PREVIEW = "mergeway/preview/staging"
DEPLOY = "mergeway/deploy/staging"
PREVIEW_MARKER = "<!-- mergeway:preview:staging -->"
DEPLOY_MARKER = "<!-- mergeway:deploy:staging -->"


def cm(name: str, value: str) -> str:
    return f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  value: {value}\n"


def config_maps(stack, namespace: str | None = None) -> set[str]:
    core = k8s.CoreV1Api(stack.cluster.api_client())
    items = core.list_namespaced_config_map(namespace or stack.namespace).items
    return {c.metadata.name for c in items}


def test_the_policy_refuses_a_repository_it_does_not_allow(make_stack: StackFactory, namespace: str, tmp_path):
    policy = tmp_path / "policy.yaml"
    rules = [{"repositories": ["github:acme/allowed"], "clusters": ["local"], "namespaces": [namespace]}]
    policy.write_text(yaml.safe_dump({"rules": rules}))
    stack = make_stack(MERGEWAY_POLICY=None, MERGEWAY_POLICY_FILE=str(policy))

    refused = stack.repo(name="acme/shop")
    pr = stack.sim.open_pr(refused, "app", files={"deploy/refused.yaml": cm("refused", "x")})
    preview = stack.status(refused, pr.head_sha, PREVIEW)
    assert preview.state == "failure", preview.description
    assert "acme/shop is not allowed to deploy anywhere by this server's policy" in preview.description
    body = stack.only_comment(refused, pr.number, PREVIEW_MARKER).body
    assert "Not allowed by this server's policy" in body and "to add" not in body
    stack.sim.merge(refused, pr)
    deploy = stack.status(refused, stack.sim.pr(refused, pr.number).merge_commit_sha, DEPLOY)
    assert deploy.state == "failure" and "policy" in deploy.description, deploy.description
    assert "refused" not in config_maps(stack), "a refused repository's objects reached the cluster"

    # The same server deploys the repository the policy allows: the refusal was the policy's decision.
    allowed = stack.repo(name="acme/allowed")
    pr = stack.sim.open_pr(allowed, "app", files={"deploy/allowed.yaml": cm("allowed", "x")})
    assert stack.status(allowed, pr.head_sha, PREVIEW).state == "success"
    stack.sim.merge(allowed, pr)
    deploy = stack.status(allowed, stack.sim.pr(allowed, pr.number).merge_commit_sha, DEPLOY)
    assert deploy.state == "success", deploy.description
    assert "allowed" in config_maps(stack)


def test_a_rollout_slower_than_the_health_timeout_fails_as_timed_out(make_stack: StackFactory):
    stack = make_stack(MERGEWAY_HEALTH_TIMEOUT_SECONDS="5")
    repo = stack.repo()
    files = {"deploy/slow.yaml": yaml.safe_dump(slow_deployment("slow", "600s"))}
    pr = stack.sim.open_pr(repo, "slow", files=files)
    stack.sim.merge(repo, pr)
    status = stack.status(repo, stack.sim.pr(repo, pr.number).merge_commit_sha, DEPLOY)
    assert status.state == "failure", status.description
    assert f"Deployment/{stack.namespace}/slow" in status.description
    body = stack.only_comment(repo, pr.number, DEPLOY_MARKER).body
    assert "❌ Deploy failed" in body and "(timed out)" in body
    assert "ProgressDeadlineExceeded" not in body  # Kubernetes has not given up: Mergeway's own timeout did
    apps = k8s.AppsV1Api(stack.cluster.api_client())
    assert not apps.read_namespaced_deployment("slow", stack.namespace).status.ready_replicas


def test_fork_previews_when_the_operator_allows_them(make_stack: StackFactory):
    stack = make_stack(MERGEWAY_ALLOW_FORK_PREVIEWS="true")
    repo = stack.repo()
    pr = stack.sim.open_pr(
        repo, "from-fork", files={"deploy/app.yaml": cm("app", "fork")}, fork_owner="mallory", author="mallory"
    )
    status = stack.status(repo, pr.head_sha, PREVIEW)
    assert status.state == "success", status.description
    assert status.description.startswith("1 to add")
    body = stack.only_comment(repo, pr.number, PREVIEW_MARKER).body
    assert f"`ConfigMap/{stack.namespace}/app`" in body and "comes from a fork" not in body
    assert "app" not in config_maps(stack), "a preview is a dry run"


def test_github_app_credentials_drive_the_whole_flow(make_stack: StackFactory, forge_sim):
    app = forge_sim.create_github_app("mergeway")
    stack = make_stack(
        GITHUB_TOKEN=None,
        GITHUB_APP_ID=str(app.app_id),
        GITHUB_APP_PRIVATE_KEY=app.private_key_pem,
        MERGEWAY_BOT_LOGINS="mergeway[bot]",
    )
    repo = stack.repo()
    forge_sim.install_app(app, repo)
    pr = stack.sim.open_pr(repo, "app", files={"deploy/app.yaml": cm("app", "via-app")})
    assert stack.status(repo, pr.head_sha, PREVIEW).state == "success"
    assert stack.only_comment(repo, pr.number, PREVIEW_MARKER).author == "mergeway[bot]"
    stack.sim.merge(repo, pr)
    assert stack.status(repo, stack.sim.pr(repo, pr.number).merge_commit_sha, DEPLOY).state == "success"
    assert stack.only_comment(repo, pr.number, DEPLOY_MARKER).author == "mergeway[bot]"
    assert "app" in config_maps(stack)
    # Every API call and git fetch was made with an installation token the worker minted.
    assert forge_sim.issued_installation_tokens, "no installation token was requested"
    principals = {r.principal for r in forge_sim.api_requests("github", None, r"^/repos/") if r.principal}
    assert principals and not any(p == "user:mergeway-bot" for p in principals), principals
    fetches = forge_sim.git_requests(repo)
    assert fetches and all(r.principal != "user:mergeway-bot" for r in fetches)
