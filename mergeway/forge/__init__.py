"""Talking to GitHub and GitLab: one interface (:class:`Forge`), two implementations.

Jobs call :func:`forge_for` and never import PyGithub or python-gitlab themselves.
"""

from mergeway.forge.base import (
    CommentRef,
    Forge,
    GitCredentials,
    Identity,
    LockFactory,
    MergeMethod,
    Permission,
    PullRequestInfo,
    Reaction,
    StatusState,
)
from mergeway.forge.errors import (
    CommentTooLongError,
    ForgeAuthError,
    ForgeError,
    ForgeNotFoundError,
    ForgePermissionError,
    ForgeRateLimitError,
    ForgeUnavailableError,
    ForgeValidationError,
)
from mergeway.forge.factory import forge_for, retry_policy

__all__ = [
    "CommentRef",
    "CommentTooLongError",
    "Forge",
    "ForgeAuthError",
    "ForgeError",
    "ForgeNotFoundError",
    "ForgePermissionError",
    "ForgeRateLimitError",
    "ForgeUnavailableError",
    "ForgeValidationError",
    "GitCredentials",
    "Identity",
    "LockFactory",
    "MergeMethod",
    "Permission",
    "PullRequestInfo",
    "Reaction",
    "StatusState",
    "forge_for",
    "retry_policy",
]
