"""What a reviewer reads, end to end (forge simulator → web → worker → cluster): the risky changes
first, changed fields with old→new values, what merging does, one summary for several environments,
and deploy comments that never claim more than was applied."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from kubernetes import client as k8s

from tests.conftest import SHARED
from tests.fixtures.e2e import Stack, diff_lines
from tests.fixtures.waiting import wait_for

pytestmark = pytest.mark.cluster
GUESTBOOK = SHARED / "manifests" / "kubernetes-examples" / "web" / "guestbook"
PREVIEW, DEPLOY = "mergeway/preview/staging", "mergeway/deploy/staging"
PREVIEW_MARKER, DEPLOY_MARKER = "<!-- mergeway:preview:staging -->", "<!-- mergeway:deploy:staging -->"
FRONTEND = GUESTBOOK / "frontend-deployment.yaml"
V5, V6 = "gcr.io/google-samples/gb-frontend:v5", "gcr.io/google-samples/gb-frontend:v6"


def record(name: str, body: str) -> None:
    """Keep a comment as a reviewer saw it, for docs/comments.md (tools/comments_doc.py sets the folder)."""
    folder = os.environ.get("MERGEWAY_RECORD_COMMENTS")
    if folder:
        Path(folder, f"{name}.md").write_text(body)


def guestbook_files() -> dict[str, str | None]:
    return {f"deploy/{p.name}": p.read_text() for p in sorted(GUESTBOOK.glob("*.yaml"))}


def storage(ns: str) -> dict[str, str | None]:
    """A statically bound volume claim: the controller manager binds it, no provisioner needed."""
    pv = f"""apiVersion: v1
kind: PersistentVolume
metadata:
  name: {ns}-data
spec:
  capacity: {{storage: 1Gi}}
  accessModes: [ReadWriteOnce]
  storageClassName: ""
  persistentVolumeReclaimPolicy: Retain
  hostPath: {{path: /tmp/{ns}-data}}
"""
    pvc = f"""apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: data
spec:
  accessModes: [ReadWriteOnce]
  storageClassName: ""
  volumeName: {ns}-data
  resources: {{requests: {{storage: 1Gi}}}}
"""
    return {"deploy/pv.yaml": pv, "deploy/pvc.yaml": pvc}


def deployed(stack: Stack, files: dict[str, str | None]):
    """A repository whose main is deployed, as after a merge, so PRs are previewed against live objects."""
    repo = stack.repo(files)
    first = stack.sim.open_pr(repo, "noop", files={"README.md": "# shop\n\ndeployed\n"})
    stack.sim.merge(repo, first)
    sha = stack.sim.pr(repo, first.number).merge_commit_sha
    assert sha and stack.status(repo, sha, DEPLOY).state == "success"
    return repo, sha


@pytest.fixture
def volume_cleanup(stack: Stack):
    yield
    core = k8s.CoreV1Api(stack.cluster.api_client())
    try:
        core.delete_persistent_volume(f"{stack.namespace}-data")
    except k8s.ApiException as exc:
        if exc.status != 404:
            raise


def test_risk_block_names_the_volume_prune_and_the_restart_with_its_reason(stack: Stack, volume_cleanup):
    ns = stack.namespace
    repo, _ = deployed(stack, {**guestbook_files(), **storage(ns)})
    changed = FRONTEND.read_text().replace("replicas: 3", "replicas: 5").replace(V5, V6)
    pr = stack.sim.open_pr(repo, "scale", files={"deploy/frontend-deployment.yaml": changed, "deploy/pvc.yaml": None})
    status = stack.status(repo, pr.head_sha, PREVIEW)
    assert status.state == "success", status.description
    comment = stack.only_comment(repo, pr.number, PREVIEW_MARKER)
    body = comment.body
    record("preview-risks", body)
    risks = body[body.index("Look at these first") : body.index("| | object |")]  # above the table
    assert f"🔥 **prunes** `PersistentVolumeClaim/{ns}/data`: its volume and the data on it" in risks
    assert f"🔄 **restarts pods of** `Deployment/{ns}/frontend`: image of `php-redis` {V5} → {V6}" in risks
    assert f"📏 **scales** `Deployment/{ns}/frontend`: replicas 3 → 5" in risks
    assert f"Deployment/{ns}/redis-master" not in risks
    row = next(line for line in body.splitlines() if line.startswith(f"| ✏️ change | `Deployment/{ns}/frontend`"))
    assert "<code>spec.replicas 3→5</code>" in row
    assert f"<code>containers[php-redis].image {V5}→{V6}</code>" in row
    assert "**On merge into `main`: applies to `staging`, then waits for the rollout.**" in body
    assert "Comment `/preview staging` to run this again" in body
    assert pr.head_sha in body  # the full SHA, which the forge links
    assert status.target_url == comment_url(stack, repo, pr.number, comment.id)


def comment_url(stack: Stack, repo, number: int, comment_id: int) -> str:
    if repo.forge == "gitlab":
        return f"{repo.web_url}/-/merge_requests/{number}#note_{comment_id}"
    return f"{repo.web_url}/pull/{number}#issuecomment-{comment_id}"


def test_a_new_object_shows_what_git_asked_for_and_counts_server_defaults(stack: Stack):
    repo = stack.repo()
    pr = stack.sim.open_pr(repo, "add", files={"deploy/frontend-deployment.yaml": FRONTEND.read_text()})
    assert stack.status(repo, pr.head_sha, PREVIEW).state == "success"
    body = stack.only_comment(repo, pr.number, PREVIEW_MARKER).body
    record("preview-new-object", body)
    row = next(line for line in body.splitlines() if line.startswith("| ➕ add |"))
    assert "field(s) from Git" in row and "server default(s)" in row
    shown, collapsed = body.split("The whole object as the API server would store it")
    assert "+  replicas: 3" in diff_lines(shown, "+")
    assert "terminationMessagePath" not in shown  # a server default: counted, not listed
    assert "terminationMessagePath" in collapsed  # but the whole object is still there


@pytest.mark.parametrize("forge", ["github", "gitlab"])
def test_two_environments_get_one_summary_linking_both(stack: Stack, forge: str):
    ns = stack.namespace
    envs = [
        {"name": "staging", "path": "deploy", "cluster": "local", "namespace": ns},
        {"name": "prod", "path": "prod", "cluster": "local", "namespace": ns, "auto_deploy": False},
    ]
    name = "acme/platform/shop" if forge == "gitlab" else "acme/shop"
    repo = stack.repo(environments=envs, forge=forge, name=name)
    stack.sim.set_permission(repo, "alice", "developer" if forge == "gitlab" else "write")
    config = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {}\ndata:\n  a: b\n"
    pr = stack.sim.open_pr(
        repo, "both", files={"deploy/cm.yaml": config.format("staging-cm"), "prod/cm.yaml": config.format("prod-cm")}
    )
    for env in ("staging", "prod"):
        assert stack.status(repo, pr.head_sha, f"mergeway/preview/{env}").state == "success"
    summary = wait_for(
        lambda: stack.marked(repo, pr.number, "<!-- mergeway:summary:preview -->"), timeout=60, message="summary"
    )
    assert len(summary) == 1
    if forge == "github":  # docs/comments.md shows the GitHub run
        record("summary", summary[0].body)
    for env in ("staging", "prod"):
        target = stack.only_comment(repo, pr.number, f"<!-- mergeway:preview:{env} -->")
        line = next(x for x in summary[0].body.splitlines() if f"[`{env}`]" in x)
        assert f"({comment_url(stack, repo, pr.number, target.id)})" in line
        assert "✅ success" in line and "1 to add" in line
    prod_line = next(x for x in summary[0].body.splitlines() if "[`prod`]" in x)
    assert prod_line.endswith("| not deployed: `auto_deploy` off |")
    prod = stack.only_comment(repo, pr.number, "<!-- mergeway:preview:prod -->").body
    if forge == "github":
        record("preview-not-deployed", prod)
    assert "**Not deployed on merge: `auto_deploy` is off for `prod`.**" in prod

    # A later push: the summary is rewritten for the new head, both environments in it.
    head = stack.sim.push(repo, pr, {"prod/more.yaml": config.format("prod-more")})
    for env in ("staging", "prod"):
        assert stack.status(repo, head, f"mergeway/preview/{env}").state == "success"
    rows = wait_for(
        lambda: summary_rows_for(stack, repo, pr.number, head), timeout=60, message="the summary of the new head"
    )
    assert "1 to add" in rows["staging"] and "2 to add" in rows["prod"], rows

    # `/preview staging` alone re-runs staging only: its row changes (the object now exists in the
    # cluster), and prod's row stays, instead of the summary shrinking to the one environment previewed.
    k8s.CoreV1Api(stack.cluster.api_client()).create_namespaced_config_map(
        ns, k8s.V1ConfigMap(metadata=k8s.V1ObjectMeta(name="staging-cm"), data={"a": "b"})
    )
    stack.sim.comment(repo, pr, "/preview staging", author="alice")
    after = wait_for(
        lambda: (r := summary_rows_for(stack, repo, pr.number, head)) and "1 to add" not in r.get("staging", "") and r,
        timeout=90,
        message="the summary's staging row from /preview staging",
    )
    assert list(after) == ["staging", "prod"], after
    assert after["prod"] == rows["prod"]
    assert "0 to add" in after["staging"], after


def summary_rows_for(stack: Stack, repo, number: int, head: str) -> dict[str, str] | None:
    """The summary's rows by environment, once the summary is the one for ``head``."""
    found = stack.marked(repo, number, "<!-- mergeway:summary:preview -->")
    if len(found) != 1 or f"### Mergeway preview summary · {head}" not in found[0].body:
        return None
    return {line.split("`")[1]: line for line in found[0].body.splitlines() if line.startswith(("| [`", "| `"))}


def test_a_rejected_deploy_says_nothing_was_applied_and_offers_no_rollback(stack: Stack):
    repo, before = deployed(stack, {"deploy/frontend-deployment.yaml": FRONTEND.read_text()})
    broken = FRONTEND.read_text().replace("replicas: 3", "replicas: -3")
    pr = stack.sim.open_pr(repo, "broken", files={"deploy/frontend-deployment.yaml": broken})
    stack.sim.merge(repo, pr)
    sha = stack.sim.pr(repo, pr.number).merge_commit_sha
    assert sha
    status = stack.status(repo, sha, DEPLOY)
    assert status.state == "failure"
    assert status.description.startswith("Nothing applied, the dry run rejected Deployment/")
    body = stack.only_comment(repo, pr.number, DEPLOY_MARKER).body
    record("deploy-rejected", body)
    assert f"**Nothing was applied: the dry run rejected 1 object(s); `staging` still runs {before}.**" in body
    assert "must be greater than or equal to 0" in body
    assert "/rollback" not in body
    apps = k8s.AppsV1Api(stack.cluster.api_client())
    assert apps.read_namespaced_deployment("frontend", stack.namespace).spec.replicas == 3


def pvc_exists(stack: Stack) -> bool:
    core = k8s.CoreV1Api(stack.cluster.api_client())
    try:
        pvc = core.read_namespaced_persistent_volume_claim("data", stack.namespace)
    except k8s.ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return pvc.metadata.deletion_timestamp is None


def test_a_volume_prune_is_held_on_merge_and_applied_after_allow_destructive(stack: Stack, volume_cleanup):
    ns = stack.namespace
    repo, _ = deployed(stack, {"deploy/cm.yaml": CONFIGMAP, **storage(ns)})
    stack.sim.set_permission(repo, "alice", "write")
    stack.sim.set_permission(repo, "carol", "write")
    stack.sim.set_permission(repo, "mallory", "read")
    pr = stack.sim.open_pr(
        repo, "drop-volume", files={"deploy/pvc.yaml": None, "deploy/cm.yaml": CONFIGMAP + "  c: d\n"}
    )
    assert stack.status(repo, pr.head_sha, PREVIEW).state == "success"
    preview = stack.only_comment(repo, pr.number, PREVIEW_MARKER).body
    allow = f"/allow-destructive staging {pr.head_sha[:12]}"
    assert f"comments `{allow}`" in preview
    stack.sim.comment(repo, pr, allow, author="mallory")  # read access: does not count
    stack.sim.comment(repo, pr, allow, author="alice")  # the pull request's author: does not count
    sha = merge_of(stack, repo, pr)
    status = stack.status(repo, sha, DEPLOY)
    assert status.state == "success", status.description
    assert "1 destructive held back" in status.description
    body = stack.only_comment(repo, pr.number, DEPLOY_MARKER).body
    record("deploy-held", body)
    held = body[body.index("Held back: 1 destructive change(s) were not executed") :]
    assert f"**prunes** `PersistentVolumeClaim/{ns}/data`" in held
    assert f"comments `{allow}`" in held
    assert pvc_exists(stack)  # held back
    core = k8s.CoreV1Api(stack.cluster.api_client())
    assert core.read_namespaced_config_map("settings", ns).data == {"a": "b", "c": "d"}  # the rest was applied

    stack.sim.comment(repo, pr, allow, author="carol")
    wait_for(lambda: not pvc_exists(stack), timeout=90, message="the claim pruned after /allow-destructive")
    done = wait_for(
        lambda: (b := stack.only_comment(repo, pr.number, DEPLOY_MARKER).body) and "✅ Deployed" in b and b,
        timeout=60,
        message="the deploy comment updated",
    )
    record("deploy-allowed", done)
    assert "**0 added, 0 changed, 1 pruned" in done and "Held back" not in done


def test_a_labelled_pull_request_prunes_the_volume_on_merge(stack: Stack, volume_cleanup):
    repo, _ = deployed(stack, {"deploy/cm.yaml": CONFIGMAP, **storage(stack.namespace)})
    pr = stack.sim.open_pr(repo, "drop-volume", files={"deploy/pvc.yaml": None})
    stack.sim.label(repo, pr, "mergeway/allow-destructive")
    status = stack.status(repo, merge_of(stack, repo, pr), DEPLOY)
    assert status.state == "success" and "held back" not in status.description, status.description
    assert "1 pruned" in status.description
    deployed_comment = stack.only_comment(repo, pr.number, DEPLOY_MARKER)
    record("deploy-success", deployed_comment.body)
    assert status.target_url == comment_url(stack, repo, pr.number, deployed_comment.id)
    assert not pvc_exists(stack)


CONFIGMAP = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  a: b\n"


def merge_of(stack: Stack, repo, pr) -> str:
    stack.sim.merge(repo, pr)
    sha = stack.sim.pr(repo, pr.number).merge_commit_sha
    assert sha
    return sha


def test_a_pull_request_whose_base_moved_on_previews_the_merge_result(stack: Stack):
    ns = stack.namespace
    repo, _ = deployed(stack, {"deploy/cm.yaml": CONFIGMAP, "deploy/frontend-deployment.yaml": FRONTEND.read_text()})
    scale = stack.sim.open_pr(
        repo,
        "scale",
        files={"deploy/frontend-deployment.yaml": FRONTEND.read_text().replace("replicas: 3", "replicas: 5")},
    )
    assert stack.status(repo, scale.head_sha, PREVIEW).state == "success"
    # Meanwhile another pull request changes the ConfigMap on main, and is deployed.
    other = stack.sim.open_pr(repo, "settings", files={"deploy/cm.yaml": CONFIGMAP.replace("a: b", "a: c")})
    assert stack.status(repo, merge_of(stack, repo, other), DEPLOY).state == "success"

    sha = stack.sim.push(repo, scale, {"notes.txt": "again\n"})
    status = stack.status(repo, sha, PREVIEW)
    assert status.description.startswith("0 to add, 1 to change, 0 to prune, 1 unchanged"), status.description
    body = stack.only_comment(repo, scale.number, PREVIEW_MARKER).body
    record("preview-merge-result", body)
    main = stack.sim.head(repo)
    assert f"Rendered from the merge of this pull request into `main` ({main})" in body
    assert f"ConfigMap/{ns}/settings" not in body  # not shown as reverted to a: b
    assert "<code>spec.replicas 3→5</code>" in body


def test_a_conflicting_pull_request_previews_its_head_and_says_so(stack: Stack):
    repo = stack.repo({"deploy/cm.yaml": CONFIGMAP})
    mine = stack.sim.open_pr(repo, "mine", files={"deploy/cm.yaml": CONFIGMAP.replace("a: b", "a: mine")})
    first_preview = stack.status(repo, mine.head_sha, PREVIEW)
    assert first_preview.state == "success", first_preview.description
    theirs = stack.sim.open_pr(repo, "theirs", files={"deploy/cm.yaml": CONFIGMAP.replace("a: b", "a: theirs")})
    stack.sim.merge(repo, theirs)
    sha = stack.sim.push(repo, mine, {"notes.txt": "again\n"})
    assert stack.status(repo, sha, PREVIEW).state == "success"
    body = stack.only_comment(repo, mine.number, PREVIEW_MARKER).body
    record("preview-conflict", body)
    assert "Rendered from this pull request's head only: ⚠️ it conflicts with `main`" in body
