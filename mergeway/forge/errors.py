"""Forge errors that say what was missing or refused, in words an operator can act on.

The client libraries raise ``GithubException`` / ``GitlabError`` carrying an HTTP status and the
server's message. Jobs should not care which library ran, and a message like "404 {'message':
'Not Found'}" does not tell anyone whether the repository, the pull request or the token is wrong.
Every error here names the forge, the repository and the thing being accessed, and is redacted.
"""

from __future__ import annotations

from mergeway.redaction import redact


class ForgeError(Exception):
    """Base class: a forge call failed. ``status`` is the HTTP status when there was one."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(redact(message))
        self.status = status

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""


class ForgeNotFoundError(ForgeError):
    """The repository, pull request, comment or commit does not exist, or the token cannot see it."""


class ForgeAuthError(ForgeError):
    """The forge rejected the credentials (HTTP 401): wrong, revoked or expired token."""


class ForgePermissionError(ForgeError):
    """The credentials are valid but lack a permission the operation needs (HTTP 403)."""


class ForgeValidationError(ForgeError):
    """The forge refused the request's content (HTTP 400/409/422)."""


class ForgeRateLimitError(ForgeError):
    """Rate limited beyond what we are willing to wait inside a job (``MERGEWAY_FORGE_MAX_WAIT_SECONDS``).

    The job fails rather than holding a worker asleep for up to an hour, and is not re-queued (see
    docs/DECISIONS.md, "Forge rate limits"): ``retry_after`` (seconds, when the forge said) goes
    into the message, so the log and the job's result say when the forge will answer again.
    """

    def __init__(self, message: str, *, status: int | None = None, retry_after: float | None = None) -> None:
        if retry_after is not None:
            message = f"{message}; the forge asks to wait {retry_after:.0f}s, longer than a job waits"
        super().__init__(message, status=status)
        self.retry_after = retry_after


class ForgeUnavailableError(ForgeError):
    """The forge kept failing (5xx, timeouts, connection errors) after all retries: transient."""


class CommentTooLongError(ForgeError):
    """A comment body exceeds the forge's limit; the report layer must cut it down first."""

    def __init__(self, forge: str, length: int, limit: int) -> None:
        super().__init__(
            f"{forge}: comment body is {length} characters, over the forge's limit of {limit}; "
            "the report must be shortened before it is posted"
        )
        self.length = length
        self.limit = limit
