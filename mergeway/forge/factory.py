"""Build the :class:`~mergeway.forge.base.Forge` for a repository from settings."""

from __future__ import annotations

from mergeway.config import Settings
from mergeway.events import Repository
from mergeway.forge.base import Forge
from mergeway.forge.errors import ForgeAuthError
from mergeway.forge.github import (
    GitHubForge,
    github_app_identity,
    github_client_for_app,
    github_client_for_token,
)
from mergeway.forge.gitlab import GitLabForge, gitlab_client
from mergeway.forge.retry import RetryPolicy


def retry_policy(settings: Settings) -> RetryPolicy:
    return RetryPolicy(
        attempts=settings.forge_retries,
        backoff_factor=settings.forge_backoff_seconds,
        max_wait=settings.forge_max_wait_seconds,
        secondary_wait=min(60.0, settings.forge_max_wait_seconds),
        timeout=settings.forge_timeout_seconds,
    )


def forge_for(repo: Repository, settings: Settings) -> Forge:
    """The forge client for ``repo``. GitHub prefers App auth when ``GITHUB_APP_ID`` is set."""
    policy = retry_policy(settings)
    if repo.forge == "github":
        if settings.github_app_id:
            app = (settings.github_app_id, settings.github_app_private_key)
            client, token = github_client_for_app(
                *app, repo.full_name, settings.github_api_url, policy, settings.github_write_interval_seconds
            )
            return GitHubForge(
                repo,
                client,
                token,
                identity=lambda: github_app_identity(*app, settings.github_api_url, policy),
            )
        if settings.github_token:
            client, token = github_client_for_token(
                settings.github_token,
                settings.github_api_url,
                policy,
                settings.github_write_interval_seconds,
            )
            return GitHubForge(repo, client, token)
        raise ForgeAuthError("GitHub: no credentials configured (set GITHUB_TOKEN or GITHUB_APP_ID)")
    if repo.forge == "gitlab":
        if not settings.gitlab_token:
            raise ForgeAuthError("GitLab: no credentials configured (set GITLAB_TOKEN)")
        return GitLabForge(
            repo, gitlab_client(settings.gitlab_url, settings.gitlab_token, policy), settings.gitlab_token
        )
    raise ValueError(f"unknown forge {repo.forge!r}")
