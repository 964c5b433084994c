"""Where git may connect, and where credentials may go: derived from settings alone."""

from __future__ import annotations

import pytest

from mergeway.config import Settings
from mergeway.forge.base import GitCredentials
from mergeway.forge.identity import IdentityError, clone_url, git_origins
from mergeway.git.run import CredentialHostError, credential_env

CREDS = GitCredentials("x-access-token", "ghs_" + "a" * 36)


@pytest.mark.parametrize(
    ("api_url", "expected"),
    [
        ("https://api.github.com", "https://github.com/acme/shop.git"),
        ("https://ghe.example.com/api/v3", "https://ghe.example.com/acme/shop.git"),
        ("https://api.acme.ghe.com", "https://acme.ghe.com/acme/shop.git"),
        ("http://127.0.0.1:8080/api/v3/", "http://127.0.0.1:8080/acme/shop.git"),
    ],
)
def test_github_clone_url_is_on_the_configured_host(api_url: str, expected: str) -> None:
    assert clone_url("github", "acme/shop", Settings(github_api_url=api_url.rstrip("/"))) == expected


def test_gitlab_clone_url_keeps_subgroups_and_a_relative_root() -> None:
    settings = Settings(gitlab_url="https://git.example.com/gitlab")
    assert clone_url("gitlab", "group/sub/app", settings) == "https://git.example.com/gitlab/group/sub/app.git"


def test_dotted_names_are_names() -> None:
    assert clone_url("github", "acme/.github", Settings()) == "https://github.com/acme/.github.git"


@pytest.mark.parametrize(
    "name", ["acme", "acme/..", "acme/../x", "acme/shop?x=1", "acme/@evil.example", "//evil.example/x", ""]
)
def test_a_name_that_is_not_a_path_is_refused(name: str) -> None:
    with pytest.raises(IdentityError):
        clone_url("github", name, Settings())


def test_credentials_go_to_the_configured_origins_only() -> None:
    origins = git_origins(Settings(github_api_url="https://ghe.example.com/api/v3", gitlab_url="https://gitlab.com"))
    assert origins == {"https://ghe.example.com:443", "https://gitlab.com:443"}
    env = credential_env("https://ghe.example.com/acme/shop.git", CREDS, allowed_origins=origins)
    assert env["GIT_CONFIG_KEY_0"] == "http.https://ghe.example.com/.extraHeader"
    assert ("http.followRedirects", "false") in {
        (env[f"GIT_CONFIG_KEY_{i}"], env[f"GIT_CONFIG_VALUE_{i}"]) for i in range(3)
    }
    for url in (
        "https://evil.example/acme/shop.git",
        "http://ghe.example.com/acme/shop.git",  # same host, other scheme and port
        "https://ghe.example.com:8443/acme/shop.git",
        "https://ghe.example.com.evil.example/acme/shop.git",
    ):
        with pytest.raises(CredentialHostError) as refused:
            credential_env(url, CREDS, allowed_origins=origins)
        assert CREDS.password not in str(refused.value)
