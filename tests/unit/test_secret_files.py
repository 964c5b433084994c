"""Secrets come from files read once at start (the chart's form), not only from variables.

A variable stays readable in ``/proc/<pid>/environ`` for the life of the process, so the chart
mounts each Secret as files named like the variables they replace (``MERGEWAY_SECRETS_DIR``), and
the Redis password apart from the URL. What an operator would notice: the worker and web settings
hold the same values either way, and the Redis clients connect with the password from the file.
"""

from __future__ import annotations

from pathlib import Path

import kombu.utils.url
import redis.connection

from mergeway.config import Settings

PASSWORD = "p@ss/wo:rd%"


def _secrets(tmp_path: Path, files: dict[str, str]) -> Path:
    directory = tmp_path / "secrets"
    directory.mkdir()
    for name, value in files.items():
        (directory / name).write_text(value + "\n")
    return directory


def test_secrets_are_read_from_files_named_like_their_variables(tmp_path: Path) -> None:
    directory = _secrets(
        tmp_path,
        {"GITHUB_TOKEN": "ghp-from-file", "GITHUB_WEBHOOK_SECRET": "hook", "MERGEWAY_REDIS_PASSWORD": PASSWORD},
    )
    env = {
        "MERGEWAY_SECRETS_DIR": str(directory),
        "MERGEWAY_FORGES": "github",
        "REDIS_URL": "redis://redis.mergeway.svc:6379/0",
        "MERGEWAY_POLICY": "allow-all",
    }
    for role in ("web", "worker"):
        settings = Settings.from_env(env, role=role)
        assert (settings.github_token, settings.github_webhook_secret) == ("ghp-from-file", "hook")
    url = Settings.from_env(env).redis_url
    # Both clients that read the URL (redis-py for intake, kombu for Celery) get the password back.
    assert redis.connection.parse_url(url)["password"] == PASSWORD
    assert kombu.utils.url.url_to_parts(url).password == PASSWORD
    assert PASSWORD not in Settings.from_env(env).describe()


def test_a_file_variable_wins_over_the_directory_and_a_url_password_wins_over_the_file(tmp_path: Path) -> None:
    directory = _secrets(tmp_path, {"GITHUB_TOKEN": "from-dir", "MERGEWAY_REDIS_PASSWORD": PASSWORD})
    single = tmp_path / "token"
    single.write_text("from-file")
    env = {
        "MERGEWAY_SECRETS_DIR": str(directory),
        "GITHUB_TOKEN_FILE": str(single),
        "GITHUB_TOKEN": "inline",
        "REDIS_URL": "redis://:inline@redis:6379/0",
    }
    settings = Settings.from_env(env)
    assert settings.github_token == "from-file"
    assert settings.redis_url == "redis://:inline@redis:6379/0"


def test_without_files_the_inline_variables_still_work_for_development() -> None:
    env = {"GITHUB_TOKEN": "inline", "MERGEWAY_REDIS_PASSWORD": "pw", "REDIS_URL": "redis://127.0.0.1:6379/0"}
    settings = Settings.from_env(env)
    assert (settings.github_token, settings.redis_url) == ("inline", "redis://:pw@127.0.0.1:6379/0")


def test_the_github_app_id_kept_in_the_workers_secret_is_read_from_its_file(tmp_path: Path) -> None:
    """The chart's worker Secret holds GITHUB_APP_ID beside the key; it is no variable any more."""
    directory = _secrets(tmp_path, {"GITHUB_APP_ID": "12345", "GITHUB_APP_PRIVATE_KEY": "-----BEGIN KEY-----"})
    env = {"MERGEWAY_SECRETS_DIR": str(directory), "MERGEWAY_FORGES": "github", "MERGEWAY_POLICY": "allow-all"}
    settings = Settings.from_env(env, role="worker")
    assert (settings.github_app_id, settings.github_app_private_key) == ("12345", "-----BEGIN KEY-----")
