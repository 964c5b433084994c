"""One secret registry, one scrubber: what any path registers is masked on every path.

Secrets come from the settings (registered when a process configures its logging), from the forge
(tokens minted at run time) and from git credentials. Each test registers a secret one way and looks
for it where a user or an operator would see it: a log line, a ``GitError`` or ``ForgeError`` text
(which ends up in a pull request comment or a commit status).
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from mergeway.config import Settings
from mergeway.forge import ForgeError, GitCredentials
from mergeway.git import GitError, credential_env
from mergeway.logs import make_handler
from mergeway.redaction import redact, register_secret, register_settings_secrets

WEBHOOK_SECRET = "whsec-shaped-like-nothing-1"
SCOPED_SECRET = "acme-group-secret-2"
MINTED_TOKEN = "minted-token-of-no-known-shape-3"


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """A Mergeway JSON handler on a private logger (not the root: pytest's own handlers stay as they are)."""
    stream = io.StringIO()
    logger = logging.getLogger("mergeway.test.redaction")
    handler = make_handler(stream)
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield stream
    logger.removeHandler(handler)
    logger.propagate = True


def settings() -> Settings:
    return Settings.from_env(
        {
            "GITHUB_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "GITLAB_WEBHOOK_SECRET": "gitlab-global-secret-4",
            "MERGEWAY_GITLAB_WEBHOOK_SECRETS": f"acme={SCOPED_SECRET}",
            "GITHUB_TOKEN": "settings-token-5",
        }
    )


def test_a_settings_secret_is_masked_in_git_and_forge_errors() -> None:
    register_settings_secrets(settings())
    git_error = GitError(["fetch", "origin"], 128, f"fatal: remote said {WEBHOOK_SECRET}\n")
    forge_error = ForgeError(f"GitHub: could not comment: echoed settings-token-5 and {SCOPED_SECRET}")
    for text in (str(git_error), git_error.stderr, repr(git_error), str(forge_error)):
        assert WEBHOOK_SECRET not in text and SCOPED_SECRET not in text and "settings-token-5" not in text
    assert str(git_error) == "git fetch origin failed (exit status 128): fatal: remote said ***"


def test_a_minted_token_is_masked_in_log_lines(log_lines: io.StringIO) -> None:
    register_secret(MINTED_TOKEN)  # what a forge client does with a token it just obtained
    log = logging.getLogger("mergeway.test.redaction")
    log.info("refreshed %s", MINTED_TOKEN, extra={"auth": {"token": MINTED_TOKEN}})
    [line] = log_lines.getvalue().splitlines()
    record = json.loads(line)
    assert MINTED_TOKEN not in line
    assert record["msg"] == "refreshed ***" and record["auth"] == {"token": "***"}


def test_git_credentials_are_masked_in_log_lines_and_errors(log_lines: io.StringIO) -> None:
    env = credential_env("https://git.example/o/r.git", GitCredentials("oauth2", MINTED_TOKEN))
    header = env["GIT_CONFIG_VALUE_0"]  # "Authorization: Basic <base64 of user:token>"
    basic = header.rsplit(" ", 1)[1]
    logging.getLogger("mergeway.test.redaction").debug("git trace: %s", f"extraheader {basic}")
    assert basic not in log_lines.getvalue() and MINTED_TOKEN not in log_lines.getvalue()
    assert basic not in str(GitError(["push"], 1, f"error: {basic} rejected"))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # JSON fields, whole string values
        ('{"token": "two words"}', '{"token": "***"}'),
        ('{"access_token":"ghs_x","private_token": "p"}', '{"access_token":"***","private_token": "***"}'),
        # headers, values up to a quote, a comma or a brace
        ("Authorization: Basic dXNlcjpwYXNz;x", "Authorization: Basic ***"),
        ("headers {'Authorization': 'token abc'}", "headers {'Authorization': 'token ***'}"),
        ("PRIVATE-TOKEN: abc", "PRIVATE-TOKEN: ***"),
        ("header X-Gitlab-Token: hunter2", "header X-Gitlab-Token: ***"),
        ("X-Hub-Signature-256: sha256=abc", "X-Hub-Signature-256: ***"),
        ("password=hunter2&pr=7", "password=***&pr=7"),
        # a header value running into the next pair must not leave that pair's value readable
        ("Authorization: Bearer abc&X-Gitlab-Token: def", "Authorization: Bearer *** ***"),
        (
            "PRIVATE-TOKEN: abc&Authorization: Bearer x&prefixed-ghs_0123456789abcdefghijKL",
            "PRIVATE-TOKEN: *** Bearer ***",
        ),
        # URL user-info, whole, whatever the password holds
        ("clone https://oauth2:glpat-abcdefghij0123456789@gitlab.com/g/p.git", "clone https://***@gitlab.com/g/p.git"),
        ("https://u:pa'ss@host/x", "https://***@host/x"),
        ("fetch https://x-access-token@host/x", "fetch https://***@host/x"),
        # token shapes, anywhere
        ("found ghp_0123456789abcdefghijABCDEFGHIJ here", "found *** here"),
        ("ghs_0123456789abcdefghijABCDEFGHIJ_suffix", "***_suffix"),
        ("github_pat_11ABCDEFG0123456789_abcdefghijklmnop ok", "*** ok"),
        ("glagent-0123456789abcdef and gldt-0123456789abcdefXYZ", "*** and ***"),
        ("glxyz-0123456789abcdefghij", "***"),
        # what must stay readable
        ("nothing to hide: pr=7 repo=o/r", "nothing to hide: pr=7 repo=o/r"),
        ("https://github.com/o/r/pull/7 by mergeway@localhost", "https://github.com/o/r/pull/7 by mergeway@localhost"),
        ("git@github.com:o/r.git", "git@github.com:o/r.git"),
        ("", ""),
    ],
)
def test_credential_shapes_are_masked_unregistered(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_a_longer_secret_is_masked_whole() -> None:
    register_secret("abcdefgh")
    register_secret("abcdefgh-and-more")
    assert redact("x abcdefgh-and-more y abcdefgh") == "x *** y ***"


def test_settings_secrets_include_the_redis_password_and_the_key_lines() -> None:
    key_line = "MIIEowIBAAKCAQEAx0123456789abcdefghij"
    register_settings_secrets(
        Settings.from_env(
            {
                "GITHUB_WEBHOOK_SECRET": "w-secret-6",
                "GITLAB_WEBHOOK_SECRET": "g-secret-7",
                "REDIS_URL": "redis://:redispass@127.0.0.1:6379/0",
                "GITHUB_APP_ID": "1",
                "GITHUB_APP_PRIVATE_KEY": f"-----BEGIN RSA PRIVATE KEY-----\n{key_line}\n-----END RSA PRIVATE KEY-----",
            }
        )
    )
    assert str(GitError(["fetch"], 1, f"redispass {key_line}")) == "git fetch failed (exit status 1): *** ***"


def test_a_redis_password_from_its_file_is_masked_as_given_and_as_quoted_in_the_url(tmp_path) -> None:
    (tmp_path / "MERGEWAY_REDIS_PASSWORD").write_text("pw/with@odd:chars")
    register_settings_secrets(
        Settings.from_env({"MERGEWAY_SECRETS_DIR": str(tmp_path), "REDIS_URL": "redis://127.0.0.1:6379/0"})
    )
    error = GitError(["fetch"], 1, "pw/with@odd:chars and pw%2Fwith%40odd%3Achars")
    assert str(error) == "git fetch failed (exit status 1): *** and ***"


def test_nothing_registered_means_nothing_masked() -> None:
    register_secret("")
    register_secret(None)
    assert redact("a plain sentence about tokens") == "a plain sentence about tokens"
