"""Preview, end to end: a PR opened in the forge simulator gets one sticky comment and a status per
environment, computed by the real worker against the real cluster."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
import yaml

from tests.conftest import SHARED
from tests.fixtures.admission import MESSAGE, echoing_secret_policy
from tests.fixtures.e2e import Stack, diff_lines

pytestmark = pytest.mark.cluster
MANIFESTS = SHARED / "manifests"
GUESTBOOK = MANIFESTS / "kubernetes-examples" / "web" / "guestbook"
MARKER = "<!-- mergeway:preview:staging -->"
CONTEXT = "mergeway/preview/staging"


def tree(source: Path, prefix: str) -> dict[str, str | None]:
    return {f"{prefix}/{p.relative_to(source)}": p.read_text() for p in sorted(source.rglob("*")) if p.is_file()}


def guestbook_files() -> dict[str, str | None]:
    return {f"deploy/{p.name}": p.read_text() for p in sorted(GUESTBOOK.glob("*.yaml"))}


def test_guestbook_pr_gets_one_comment_then_edits_it_with_exactly_the_changed_lines(stack: Stack):
    repo = stack.repo()
    pr = stack.sim.open_pr(repo, "add-guestbook", files=guestbook_files(), title="Add the guestbook")
    status = stack.status(repo, pr.head_sha, CONTEXT)
    assert status.state == "success", status.description
    assert status.description.startswith("6 to add, 0 to change, 0 to prune")
    comment = stack.only_comment(repo, pr.number, MARKER)
    assert "**6 to add, 0 to change, 0 to prune, 0 unchanged**" in comment.body
    for obj in (
        "Deployment/{ns}/frontend",
        "Deployment/{ns}/redis-master",
        "Deployment/{ns}/redis-replica",
        "Service/{ns}/frontend",
        "Service/{ns}/redis-master",
        "Service/{ns}/redis-replica",
    ):
        assert f"| ➕ add | `{obj.format(ns=stack.namespace)}` |" in comment.body
    assert pr.head_sha[:12] in comment.body

    deployment = GUESTBOOK / "frontend-deployment.yaml"
    changed = deployment.read_text().replace("replicas: 3", "replicas: 5").replace("gb-frontend:v5", "gb-frontend:v6")
    sha = stack.sim.push(repo, pr, {"deploy/frontend-deployment.yaml": changed})
    status = stack.status(repo, sha, CONTEXT)
    assert status.state == "success"
    edited = stack.only_comment(repo, pr.number, MARKER)
    assert edited.id == comment.id  # the same comment, edited in place
    assert sha[:12] in edited.body
    # Nothing is deployed yet, so the whole object is new; the second push changed exactly two lines
    # of it, which the new preview shows in place of the old values.
    assert "+  replicas: 5" in diff_lines(edited.body, "+")
    assert "+        image: gcr.io/google-samples/gb-frontend:v6" in diff_lines(edited.body, "+")
    assert "gb-frontend:v5" not in edited.body


def test_preview_against_deployed_state_shows_only_changed_lines(stack: Stack):
    repo = stack.repo(guestbook_files())
    # Deploy main as it is, the way a merge would, so the PR is previewed against live objects.
    first = stack.sim.open_pr(repo, "noop", files={"README.md": "# shop\n\nguestbook\n"})
    first_preview = stack.status(repo, first.head_sha, CONTEXT)
    assert first_preview.state == "success", first_preview.description
    stack.sim.merge(repo, first)
    merged = stack.sim.pr(repo, first.number)
    assert stack.status(repo, merged.merge_commit_sha, "mergeway/deploy/staging").state == "success"

    changed = (GUESTBOOK / "frontend-deployment.yaml").read_text()
    changed = changed.replace("replicas: 3", "replicas: 5").replace("gb-frontend:v5", "gb-frontend:v6")
    pr = stack.sim.open_pr(repo, "scale", files={"deploy/frontend-deployment.yaml": changed})
    status = stack.status(repo, pr.head_sha, CONTEXT)
    assert status.description.startswith("0 to add, 1 to change, 0 to prune, 5 unchanged")
    body = stack.only_comment(repo, pr.number, MARKER).body
    assert diff_lines(body, "-") == ["-  replicas: 3", "-        image: gcr.io/google-samples/gb-frontend:v5"]
    assert diff_lines(body, "+") == ["+  replicas: 5", "+        image: gcr.io/google-samples/gb-frontend:v6"]


def test_kustomize_overlay_and_helm_chart_preview(stack: Stack):
    ns = stack.namespace
    files = {
        **tree(MANIFESTS / "podinfo" / "deploy", "apps/podinfo"),
        **tree(MANIFESTS / "podinfo" / "charts" / "podinfo", "charts/podinfo"),
    }
    envs = [
        {"name": "overlay", "path": "apps/podinfo/overlays/dev", "cluster": "local"},
        {"name": "chart", "path": "charts/podinfo", "cluster": "local", "namespace": ns, "helm": {"release": "web"}},
    ]
    repo = stack.repo(environments=envs)
    pr = stack.sim.open_pr(repo, "podinfo", files=files)
    overlay = stack.status(repo, pr.head_sha, "mergeway/preview/overlay")
    assert overlay.state == "success", overlay.description
    assert overlay.description.startswith("10 to add")
    body = stack.only_comment(repo, pr.number, "<!-- mergeway:preview:overlay -->").body
    assert "rendered with kustomize" in body and "`Namespace/dev`" in body
    chart = stack.status(repo, pr.head_sha, "mergeway/preview/chart")
    assert chart.state == "success", chart.description
    body = stack.only_comment(repo, pr.number, "<!-- mergeway:preview:chart -->").body
    assert "rendered with helm" in body
    assert f"`Deployment/{ns}/web-podinfo`" in body and f"`Service/{ns}/web-podinfo`" in body


def test_invalid_field_fails_with_the_api_server_message(stack: Stack):
    repo = stack.repo()
    broken = (GUESTBOOK / "frontend-deployment.yaml").read_text().replace("replicas: 3", "replicas: -3")
    pr = stack.sim.open_pr(repo, "broken", files={"deploy/frontend-deployment.yaml": broken})
    status = stack.status(repo, pr.head_sha, CONTEXT)
    assert status.state == "failure"
    assert "rejected by the API server" in status.description
    body = stack.only_comment(repo, pr.number, MARKER).body
    assert "Rejected by the API server" in body
    assert "spec.replicas: Invalid value: -3: must be greater than or equal to 0" in body


def test_an_api_server_rejection_that_echoes_a_secret_is_masked_in_the_comment(stack: Stack):
    """A cluster admission policy quotes the rejected Secret's value: the preview comment, the
    status and the logs carry the rejection with the value masked."""
    value = "pin-value-5e8b-91c2"
    encoded = base64.b64encode(value.encode()).decode()
    secret = f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: pin\ndata:\n  pin: {encoded}\n"
    repo = stack.repo()
    with echoing_secret_policy(stack.cluster, stack.namespace):
        pr = stack.sim.open_pr(repo, "pin", files={"deploy/pin.yaml": secret})
        status = stack.status(repo, pr.head_sha, CONTEXT)
    assert status.state == "failure"
    body = stack.only_comment(repo, pr.number, MARKER).body
    assert "Rejected by the API server" in body and f"{MESSAGE}***" in body
    everything = [c.body for c in stack.sim.list_comments(repo, pr.number)]
    everything += [s.description for s in stack.sim.list_statuses(repo)]
    everything.append(stack.logs())
    for text in everything:
        assert value not in text and encoded not in text


SECRET_V1 = "s3cr3t-value-one-111"
SECRET_V2 = "s3cr3t-value-two-222"


def secret_yaml(value: str) -> str:
    return f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\nstringData:\n  password: {value}\n"


def token_yaml(value: str) -> str:
    """A Secret written with ``data:`` (base64), as ``kubectl create secret --dry-run -o yaml`` prints it."""
    encoded = base64.b64encode(value.encode()).decode()
    return f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: token\ndata:\n  token: {encoded}\n"


TOKEN_V1, TOKEN_V2 = "t0ken-value-one-333", "t0ken-value-two-444"


@pytest.mark.parametrize("forge", ["github", "gitlab"])
def test_secret_change_is_masked_everywhere(stack: Stack, forge: str):
    files = {"deploy/secret.yaml": secret_yaml(SECRET_V1), "deploy/token.yaml": token_yaml(TOKEN_V1)}
    repo = stack.repo(files, forge=forge, name="acme/platform/shop" if forge == "gitlab" else "acme/shop")
    first = stack.sim.open_pr(repo, "noop", files={"README.md": "x\n"})
    stack.sim.merge(repo, first)
    assert (
        stack.status(repo, stack.sim.pr(repo, first.number).merge_commit_sha, "mergeway/deploy/staging").state
        == "success"
    )
    pr = stack.sim.open_pr(
        repo, "rotate", files={"deploy/secret.yaml": secret_yaml(SECRET_V2), "deploy/token.yaml": token_yaml(TOKEN_V2)}
    )
    status = stack.status(repo, pr.head_sha, CONTEXT)
    assert status.state == "success" and "2 to change" in status.description
    body = stack.only_comment(repo, pr.number, MARKER).body
    assert "-  password: '*** (before)'" in body and "+  password: '*** (after)'" in body
    assert "-  token: '*** (before)'" in body and "+  token: '*** (after)'" in body
    # The deploy of the changed Secrets: its comment names them, and shows no value either.
    stack.sim.merge(repo, pr)
    deployed = stack.status(repo, stack.sim.pr(repo, pr.number).merge_commit_sha, "mergeway/deploy/staging")
    assert deployed.state == "success", deployed.description
    deploy_body = stack.only_comment(repo, pr.number, "<!-- mergeway:deploy:staging -->").body
    assert f"Secret/{stack.namespace}/db" in deploy_body and f"Secret/{stack.namespace}/token" in deploy_body
    values = [SECRET_V1, SECRET_V2, TOKEN_V1, TOKEN_V2]
    forms = values + [base64.b64encode(v.encode()).decode() for v in values]
    everything = [c.body for number in (first.number, pr.number) for c in stack.sim.list_comments(repo, number)]
    everything += [s.description for s in stack.sim.list_statuses(repo)]
    everything.append(stack.logs())
    for text in everything:
        for form in forms:
            assert form not in text


def test_diff_larger_than_github_limit_keeps_summary_and_table(stack: Stack):
    files = {}
    for i in range(60):
        data = "\n".join(f"  key{j}: {'v' * 60}-{i}-{j}" for j in range(40))
        files[f"deploy/cm-{i:02d}.yaml"] = (
            f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-{i:02d}\ndata:\n{data}\n"
        )
    repo = stack.repo()
    pr = stack.sim.open_pr(repo, "big", files=files)
    status = stack.status(repo, pr.head_sha, CONTEXT)
    assert status.state == "success"
    body = stack.only_comment(repo, pr.number, MARKER).body
    assert len(body) <= 65_536
    assert "**60 to add, 0 to change, 0 to prune, 0 unchanged**" in body
    for i in range(60):
        assert f"`ConfigMap/{stack.namespace}/cm-{i:02d}`" in body
    assert "cut to fit the comment size limit" in body


def test_fork_pr_is_not_dry_run_and_says_so(stack: Stack):
    repo = stack.repo()
    pr = stack.sim.open_pr(repo, "from-fork", files=guestbook_files(), fork_owner="mallory", author="mallory")
    status = stack.status(repo, pr.head_sha, CONTEXT)
    assert status.state == "error"  # not a green check for something that was never checked
    assert "forks are not dry-run" in status.description
    body = stack.only_comment(repo, pr.number, MARKER).body
    assert "comes from a fork" in body and "MERGEWAY_ALLOW_FORK_PREVIEWS=true" in body
    assert "to add" not in body  # nothing was rendered or sent to the cluster


def test_diff_larger_than_gitlab_limit_keeps_summary_and_table(stack: Stack):
    # Three ConfigMaps of ~400 kB each: a diff well over GitLab's 1,000,000-character note limit.
    files = {}
    for i in range(3):
        data = "\n".join(f"  key{j:05d}: {'v' * 70}-{i}" for j in range(5000))
        files[f"deploy/big-{i}.yaml"] = f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: big-{i}\ndata:\n{data}\n"
    repo = stack.repo(forge="gitlab", name="acme/platform/shop")
    mr = stack.sim.open_pr(repo, "big", files=files)
    status = stack.status(repo, mr.head_sha, CONTEXT, timeout=150)
    assert status.state == "success", status.description
    body = stack.only_comment(repo, mr.number, MARKER).body
    assert len(body) <= 1_000_000
    assert len(body) > 65_536, "cut to GitHub's limit instead of GitLab's"
    assert "**3 to add, 0 to change, 0 to prune, 0 unchanged**" in body
    for i in range(3):
        assert f"`ConfigMap/{stack.namespace}/big-{i}`" in body
    assert "cut to fit the comment size limit" in body


def test_a_configuration_error_reaches_the_pull_request(stack: Stack):
    """A typo in ``.mergeway.yaml``: the author reads what is wrong, on the PR and on its merge."""
    repo = stack.repo()
    broken = yaml.safe_dump(
        {"enviroments": [{"name": "staging", "path": "deploy", "cluster": "local", "namespace": stack.namespace}]}
    )
    pr = stack.sim.open_pr(
        repo,
        "typo",
        files={".mergeway.yaml": broken, "deploy/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n"},
    )
    status = stack.status(repo, pr.head_sha, "mergeway/preview/config")
    assert status.state == "failure", status.description
    assert "enviroments" in status.description
    body = stack.only_comment(repo, pr.number, "<!-- mergeway:preview:config -->").body
    assert ".mergeway.yaml: unknown top-level key(s): enviroments" in body, body
    assert stack.sim.list_statuses(repo, pr.head_sha, CONTEXT) == []  # no environment could be read

    stack.sim.merge(repo, pr)
    sha = stack.sim.pr(repo, pr.number).merge_commit_sha
    assert sha
    deployed = stack.status(repo, sha, "mergeway/deploy/config")
    assert deployed.state == "failure" and "enviroments" in deployed.description, deployed.description
    assert (
        "unknown top-level key(s): enviroments"
        in stack.only_comment(repo, pr.number, "<!-- mergeway:deploy:config -->").body
    )
