"""GitHub App authentication: JWT → installation token, refreshed before it expires."""

from __future__ import annotations

import pytest

from mergeway.forge import ForgeAuthError, ForgeNotFoundError
from mergeway.git import CheckoutCache
from tests.fixtures.forgesim import SimHarness


def test_app_gets_an_installation_token_and_uses_it(forge_sim: SimHarness) -> None:
    repo = forge_sim.create_repo("github", "acme/app-repo", {"a.yaml": "1"})
    app = forge_sim.create_github_app("mergeway")
    installation = forge_sim.install_app(app, repo)
    pr = forge_sim.open_pr(repo, "feature", files={"b.yaml": "2"})
    forge = forge_sim.forge(
        repo, github_token="", github_app_id=str(app.app_id), github_app_private_key=app.private_key_pem
    )
    comment = forge.upsert_comment(pr.number, "<!-- m -->", "from the app")
    assert comment.author == "mergeway[bot]"
    assert forge_sim.list_comments(repo, pr.number)[0].author == "mergeway[bot]"
    # the simulator saw the JWT-authenticated calls, then installation-token calls
    lookups = forge_sim.api_requests("github", "GET", r"/installation$")
    mints = forge_sim.api_requests("github", "POST", rf"/app/installations/{installation}/access_tokens$")
    assert [r.principal for r in lookups] == [f"app:{app.app_id}"]
    assert [r.principal for r in mints] == [f"app:{app.app_id}"] and mints[0].status == 201
    comment_calls = forge_sim.api_requests("github", path=r"/comments$")
    assert {r.principal for r in comment_calls} == {f"installation:{installation}"}
    # one token serves many calls while it is far from expiry
    forge.set_status(pr.head_sha, "success", "mergeway/preview/x")
    forge_sim.forge(
        repo, github_token="", github_app_id=str(app.app_id), github_app_private_key=app.private_key_pem
    ).get_pull_request(pr.number)
    assert len(forge_sim.issued_installation_tokens) == 1
    # git uses the same installation token
    cache = CheckoutCache.from_settings(
        forge_sim.settings(github_token="", github_app_id=str(app.app_id), github_app_private_key=app.private_key_pem)
    )
    with cache.checkout(forge_sim.repository(repo), pr.head_sha, pr.number) as tree:
        assert (tree / "b.yaml").read_text() == "2"
    assert {r.principal for r in forge_sim.git_requests(repo)} == {f"installation:{installation}"}


def test_installation_token_is_refreshed_before_expiry(forge_sim: SimHarness) -> None:
    repo = forge_sim.create_repo("github", "acme/app-repo")
    app = forge_sim.create_github_app()
    forge_sim.install_app(app, repo)
    pr = forge_sim.open_pr(repo, "feature", files={"b.yaml": "2"})
    # Tokens that live 15 s are inside PyGithub's 20 s refresh margin from the start, so every use
    # refreshes: the client must mint a new token rather than send one about to expire.
    forge_sim.installation_token_ttl = 15
    forge = forge_sim.forge(
        repo, github_token="", github_app_id=str(app.app_id), github_app_private_key=app.private_key_pem
    )
    forge.get_pull_request(pr.number)
    first = forge_sim.issued_installation_tokens[-1]
    forge.get_pull_request(pr.number)
    second = forge_sim.issued_installation_tokens[-1]
    assert first.value != second.value
    assert len(forge_sim.issued_installation_tokens) >= 2
    creds = forge.git_credentials()
    assert creds.username == "x-access-token"
    assert creds.password == forge_sim.issued_installation_tokens[-1].value
    assert creds.password not in repr(creds)


def test_app_with_a_wrong_key_or_no_installation(forge_sim: SimHarness) -> None:
    repo = forge_sim.create_repo("github", "acme/app-repo")
    app = forge_sim.create_github_app()
    other = forge_sim.create_github_app("impostor")
    forge_sim.install_app(app, repo)
    with pytest.raises(ForgeAuthError) as err:
        forge_sim.forge(
            repo, github_token="", github_app_id=str(app.app_id), github_app_private_key=other.private_key_pem
        )
    assert "401" in str(err.value)
    assert "PRIVATE KEY" not in str(err.value)
    uninstalled = forge_sim.create_repo("github", "acme/not-installed")
    with pytest.raises(ForgeNotFoundError) as missing:
        forge_sim.forge(
            uninstalled, github_token="", github_app_id=str(app.app_id), github_app_private_key=app.private_key_pem
        )
    assert "installation" in str(missing.value) and "acme/not-installed" in str(missing.value)
