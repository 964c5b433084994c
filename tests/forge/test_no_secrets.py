"""No token in any log line, exception message, or git command line, across both forges.

The scenario exercises every path that handles a credential: API calls with personal and GitHub
App installation tokens, failures that produce exceptions, and git fetch/push through the checkout
cache; logging is captured at DEBUG for every logger. Every git process is recorded (argv and
environment) through :data:`mergeway.proc._popen`.
"""

from __future__ import annotations

import logging
import subprocess
from typing import Any

import pytest

from mergeway import proc
from mergeway.forge import ForgeError
from mergeway.git import CheckoutCache, GitError
from tests.fixtures.forgesim import SimHarness


def test_no_token_leaks(
    forge_sim: SimHarness, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.DEBUG)
    spawned: list[tuple[list[str], dict[str, str]]] = []
    real_popen = subprocess.Popen

    def recording_popen(argv: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        spawned.append((list(argv), dict(kwargs.get("env") or {})))
        return real_popen(argv, **kwargs)

    monkeypatch.setattr(proc, "_popen", recording_popen)
    errors: list[str] = []
    app = forge_sim.create_github_app()
    wrong = {"github": "ghp_" + "7" * 36, "gitlab": "glpat-" + "7" * 20}

    for forge_name, name in (("github", "acme/secrets"), ("gitlab", "group/secrets")):
        repo = forge_sim.create_repo(forge_name, name, {"a.yaml": "1"})  # type: ignore[arg-type]
        pr = forge_sim.open_pr(repo, "feature", files={"b.yaml": "2"})
        variants: list[dict[str, Any]] = [{}]
        if forge_name == "github":
            forge_sim.install_app(app, repo)
            variants.append(
                {"github_token": "", "github_app_id": str(app.app_id), "github_app_private_key": app.private_key_pem}
            )
        for overrides in variants:
            forge = forge_sim.forge(repo, **overrides)
            forge.upsert_comment(pr.number, "<!-- m -->", "hello")
            forge.set_status(pr.head_sha, "pending", "mergeway/preview/x")
            forge.get_permission("alice")
            forge.get_pull_request(pr.number)
            cache = CheckoutCache.from_settings(forge_sim.settings(**overrides))
            target = forge_sim.repository(repo)
            with cache.checkout(target, pr.head_sha, pr.number) as tree:
                (tree / "c.yaml").write_text("3")
                cache.git(target, tree, "add", "c.yaml")
                cache.git(target, tree, "commit", "-q", "-m", "c")
                cache.push(target, tree, f"pushed-{len(overrides)}")
        # failures: wrong token (API and git), missing PR
        bad = forge_sim.forge(repo, github_token=wrong["github"], gitlab_token=wrong["gitlab"])
        bad_cache = CheckoutCache(forge_sim.root / "bad", lambda r, bad=bad: bad.git_credentials())  # type: ignore[misc]
        with pytest.raises(ForgeError) as api_err:
            bad.get_pull_request(pr.number)
        with pytest.raises(ForgeError) as missing_err:
            forge_sim.forge(repo).get_pull_request(404)
        with pytest.raises(GitError) as git_err:
            bad_cache.fetch(forge_sim.repository(repo))
        for exc in (api_err.value, missing_err.value, git_err.value):
            errors.extend((str(exc), repr(exc)))

    secrets = {forge_sim.bot_token("github"), forge_sim.bot_token("gitlab"), *wrong.values()}
    secrets |= {t.value for t in forge_sim.issued_installation_tokens}
    assert forge_sim.issued_installation_tokens, "the App path was exercised"
    key_body = app.private_key_pem.splitlines()[1]
    logs = [record.getMessage() for record in caplog.records]
    assert any("access_tokens" in line for line in logs), "DEBUG request logs were captured"
    assert len(spawned) > 10 and len(errors) == 12

    for secret in [*secrets, key_body]:
        for line in logs:
            assert secret not in line, f"secret in log line: {line[:200]}"
        for message in errors:
            assert secret not in message, f"secret in exception: {message[:200]}"
        for argv, env in spawned:
            assert not any(secret in arg for arg in argv), f"secret on git command line: {argv}"
            leaked = [k for k, v in env.items() if secret in v]
            assert not leaked, f"raw secret in git environment variables {leaked}"
    # credentials reach git only as a host-scoped header in GIT_CONFIG_* variables
    remote_calls = [env for argv, env in spawned if argv[1:2] != ["init"] and "GIT_CONFIG_COUNT" in env]
    assert remote_calls and all(
        env["GIT_CONFIG_KEY_0"].startswith("http.http://127.0.0.1:")
        and env["GIT_CONFIG_KEY_0"].endswith("/.extraHeader")
        for env in remote_calls
    )
    assert all(env.get("GIT_TERMINAL_PROMPT") == "0" for _, env in spawned)
    assert all(not any(k in env for k in ("GIT_DIR", "GIT_INDEX_FILE", "GIT_ASKPASS")) for _, env in spawned)


def test_log_redaction_filter(caplog: pytest.LogCaptureFixture) -> None:
    """Library loggers that could print a token-bearing body or header are filtered."""
    from mergeway.logs import install_log_redaction
    from mergeway.redaction import redact, register_secret

    install_log_redaction()
    caplog.set_level(logging.DEBUG)
    token = "ghs_" + "a1" * 18
    logging.getLogger("github.Requester").debug(
        "POST %s ==> 201 %s",
        "/app/installations/1/access_tokens",
        f'{{"token":"{token}","expires_at":"2030-01-01T00:00:00Z"}}',
    )
    logging.getLogger("urllib3.connectionpool").debug("headers {'Authorization': 'token %s'}", token)
    assert caplog.records and all(token not in r.getMessage() for r in caplog.records)
    register_secret("s3cr3t-value-xyz")
    assert redact("https://u:s3cr3t-value-xyz@host/x and PRIVATE-TOKEN: glpat-abcdefghijklmnopqrstu") == (
        "https://***@host/x and PRIVATE-TOKEN: ***"
    )
