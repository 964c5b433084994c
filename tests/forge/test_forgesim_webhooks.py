"""The simulator's webhooks: signed, shaped like the real fixtures, sent on the right actions."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from tests.conftest import WEBHOOKS
from tests.fixtures.forgesim import SimHarness

FIXTURES = WEBHOOKS


class Receiver:
    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def app(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        self.received.append((dict(request.headers.items()), request.get_data()))
        return Response('{"status": "queued"}', status=202, content_type="application/json")(environ, start_response)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/webhooks"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    r.thread.start()
    yield r
    r.server.shutdown()


def _fixture(path: str) -> dict[str, Any]:
    return json.loads((FIXTURES / path).read_text())  # type: ignore[no-any-return]


def _assert_shaped_like(payload: dict[str, Any], fixture: dict[str, Any], *keys: str) -> None:
    """Every top-level key of the real payload, and of the named nested objects, is present."""
    assert set(fixture) <= set(payload), set(fixture) - set(payload)
    for key in keys:
        missing = set(fixture[key]) - set(payload[key])
        assert not missing, (key, missing)


def test_github_webhooks_are_signed_and_shaped_like_real_ones(forge_sim: SimHarness, receiver: Receiver) -> None:
    secret = "It's a Secret to Everybody"
    forge_sim.set_webhook("github", receiver.url, secret)
    repo = forge_sim.create_repo("github", "acme/shop")
    pr = forge_sim.open_pr(repo, "feature", files={"a": "1"}, title="Add a")
    before = pr.head_sha
    after = forge_sim.push(repo, pr, {"b": "2"})
    command = forge_sim.comment(repo, pr, "/rollback", author="bob")
    forge_sim.merge(repo, pr, method="squash", by="carol")

    events = [(h["X-Github-Event"], json.loads(body)) for h, body in receiver.received]
    assert [(e, p["action"]) for e, p in events] == [
        ("pull_request", "opened"),
        ("pull_request", "synchronize"),
        ("issue_comment", "created"),
        ("pull_request", "closed"),
    ]
    for headers, body in receiver.received:
        expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(headers["X-Hub-Signature-256"], expected)
        assert headers["User-Agent"].startswith("GitHub-Hookshot/")
        assert headers["X-Github-Delivery"]
    opened, sync, comment, closed = (p for _, p in events)
    _assert_shaped_like(
        opened,
        {k: v for k, v in _fixture("github/pull_request.opened.json").items() if k != "installation"},
        "pull_request",
    )
    _assert_shaped_like(
        sync, {k: v for k, v in _fixture("github/pull_request.synchronize.json").items() if k != "installation"}
    )
    assert (sync["before"], sync["after"], sync["pull_request"]["head"]["sha"]) == (before, after, after)
    _assert_shaped_like(comment, _fixture("github/issue_comment.created.json"), "comment")
    assert comment["issue"]["pull_request"]["url"].endswith("/pulls/1")
    assert comment["comment"]["id"] == command.id and comment["sender"]["login"] == "bob"
    assert closed["pull_request"]["merged"] is True
    assert closed["pull_request"]["merge_commit_sha"] == forge_sim.head(repo)
    assert closed["pull_request"]["merged_by"]["login"] == "carol"
    assert all(d.status == 202 for d in forge_sim.deliveries("github"))


def test_gitlab_webhooks_carry_the_token_and_real_shapes(forge_sim: SimHarness, receiver: Receiver) -> None:
    forge_sim.set_webhook("gitlab", receiver.url, "gl-secret")
    repo = forge_sim.create_repo("gitlab", "group/shop")
    pr = forge_sim.open_pr(repo, "feature", files={"a": "1"})
    old = pr.head_sha
    forge_sim.force_push_pr(repo, pr, {"c": "3"})
    forge_sim.comment(repo, pr, "/preview")
    forge_sim.merge(repo, pr, method="merge")

    events = [(h["X-Gitlab-Event"], json.loads(body)) for h, body in receiver.received]
    kinds = [(e, p["object_attributes"].get("action")) for e, p in events]
    assert kinds == [
        ("Merge Request Hook", "open"),
        ("Merge Request Hook", "update"),
        ("Note Hook", "create"),
        ("Merge Request Hook", "merge"),
    ]
    for headers, _ in receiver.received:
        assert headers["X-Gitlab-Token"] == "gl-secret"
        assert headers["X-Gitlab-Event-Uuid"] and headers["Idempotency-Key"]
    opened, update, note, merged = (p for _, p in events)
    _assert_shaped_like(
        opened, _fixture("gitlab/merge_request.open.json") | {"changes": {}}, "object_attributes", "project"
    )
    assert update["object_attributes"]["oldrev"] == old
    assert update["object_attributes"]["last_commit"]["id"] == pr.head_sha
    _assert_shaped_like(note, _fixture("gitlab/note.merge_request.json"), "object_attributes")
    assert note["object_attributes"]["noteable_type"] == "MergeRequest"
    assert note["merge_request"]["iid"] == pr.number
    assert merged["object_attributes"]["state"] == "merged"
    assert merged["object_attributes"]["merge_commit_sha"] == forge_sim.head(repo)


def test_redelivery_keeps_the_delivery_id(forge_sim: SimHarness, receiver: Receiver) -> None:
    forge_sim.set_webhook("github", receiver.url, "s")
    repo = forge_sim.create_repo("github", "acme/shop")
    forge_sim.open_pr(repo, "feature", files={"a": "1"})
    original = forge_sim.deliveries("github")[0]
    again = forge_sim.webhooks.redeliver(original)
    assert again.id == original.id and again.status == 202
    ids = [h["X-Github-Delivery"] for h, _ in receiver.received]
    assert ids[0] == ids[1]


def test_real_git_push_over_http_updates_the_pr(forge_sim: SimHarness, tmp_path: Path) -> None:
    """A push through git's smart HTTP (what Mergeway does for a revert) moves the PR like a helper push."""
    import base64
    import subprocess

    repo = forge_sim.create_repo("github", "acme/shop")
    pr = forge_sim.open_pr(repo, "feature", files={"a": "1"})
    token = forge_sim.token_for("github", "alice")
    header = "Authorization: Basic " + base64.b64encode(f"x-access-token:{token}".encode()).decode()
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "http.extraHeader",
        "GIT_CONFIG_VALUE_0": header,
        "GIT_AUTHOR_NAME": "A",
        "GIT_AUTHOR_EMAIL": "a@x",
        "GIT_COMMITTER_NAME": "A",
        "GIT_COMMITTER_EMAIL": "a@x",
    }
    work = tmp_path / "clone"
    subprocess.run(
        ["git", "clone", "--quiet", "--branch", "feature", repo.clone_url, str(work)], env=env, check=True, timeout=60
    )
    (work / "new.txt").write_text("pushed\n")
    subprocess.run(["git", "add", "."], cwd=work, env=env, check=True, timeout=60)
    subprocess.run(["git", "commit", "--quiet", "-m", "pushed over http"], cwd=work, env=env, check=True, timeout=60)
    subprocess.run(["git", "push", "--quiet", "origin", "feature"], cwd=work, env=env, check=True, timeout=60)
    new = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=work, env=env, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert forge_sim.pr(repo, pr.number).head_sha == new
    forge_sim.webhooks.drain()
    assert [d.action for d in forge_sim.deliveries("github", "pull_request")] == ["opened", "synchronize"]
    # without credentials git is refused
    denied = subprocess.run(
        ["git", "ls-remote", repo.clone_url], env={**env, "GIT_CONFIG_COUNT": "0"}, capture_output=True, timeout=60
    )
    assert denied.returncode != 0
