"""One retry policy for both forges, applied at the HTTP layer.

Decision: retries happen inside urllib3 (the transport under both client libraries), not around
Mergeway's forge methods. That way a retried request is exactly the request that failed (no
re-listing of comments, no second "create"), and both libraries see either success or the final
failure, which :mod:`mergeway.forge.errors` then names.

- GitHub: PyGithub accepts a ``urllib3.Retry``; we pass a subclass of its own ``GithubRetry``, which
  already recognises GitHub's 403 "secondary rate limit" bodies, and add our cap on waiting.
- GitLab: python-gitlab has its own loop (``obey_rate_limit``, ``retry_transient_errors``,
  ``max_retries``) which sleeps for any ``Retry-After`` without a cap. We switch it off (see
  ``mergeway.forge.gitlab``) and mount an ``HTTPAdapter`` with :class:`ForgeRetry` on its session.

Retried: 429, 500, 502, 503, 504, connection errors and (GitHub) rate-limited 403s, for every HTTP
method, POST included: a 429 means the request was not processed, and our writes are designed to be
idempotent (sticky comments converge, an existing PR is found again, statuses and reactions repeat
harmlessly). Waits honour ``Retry-After`` (seconds or HTTP date), then ``X-RateLimit-Reset`` /
``RateLimit-Reset`` when the remaining budget is 0, else exponential backoff with jitter. A wait
longer than ``max_wait`` is not slept inside a job: the response is handed back and surfaces as
:class:`~mergeway.forge.errors.ForgeRateLimitError`, whose message says how long the forge asked
for; the job fails and is not re-queued (docs/DECISIONS.md, "Forge rate limits").
"""

from __future__ import annotations

import email.utils
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Self, cast

import requests
from github.GithubRetry import GithubRetry
from requests.adapters import HTTPAdapter
from urllib3.exceptions import MaxRetryError, ResponseError
from urllib3.util.retry import Retry

log = logging.getLogger("mergeway.forge.retry")

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try. ``attempts`` is the number of retries after the first try."""

    attempts: int = 5
    backoff_factor: float = 0.5
    backoff_max: float = 30.0
    #: Longest rate-limit wait (Retry-After / reset) slept inside a job, in seconds.
    max_wait: float = 60.0
    #: Wait for GitHub secondary rate limits that give no Retry-After (GitHub suggests a minute).
    secondary_wait: float = 60.0
    #: Per-request timeout, in seconds.
    timeout: float = 30.0


def rate_limit_wait(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds the forge asked us to wait, from ``Retry-After`` or an exhausted rate-limit window."""
    lowered = {k.lower(): v for k, v in headers.items()}
    now = time.time() if now is None else now
    retry_after = lowered.get("retry-after", "").strip()
    if retry_after:
        if retry_after.isdigit():
            return float(retry_after)
        try:
            parsed = email.utils.parsedate_to_datetime(retry_after)
        except (TypeError, ValueError):
            parsed = None
        if parsed is not None:
            return max(0.0, parsed.timestamp() - now)
    for remaining_key, reset_key in (
        ("x-ratelimit-remaining", "x-ratelimit-reset"),
        ("ratelimit-remaining", "ratelimit-reset"),
    ):
        if lowered.get(remaining_key, "").strip() == "0":
            reset = lowered.get(reset_key, "").strip()
            if reset.isdigit():
                return max(0.0, float(reset) - now) + 1.0  # the reset second itself may still be limited
    return None


class _CappedWaitMixin:
    """Shared by both Retry classes: honour rate-limit headers, refuse to sleep past ``max_wait``."""

    max_wait: float

    def get_retry_after(self, response: Any) -> float | None:
        return rate_limit_wait(response.headers) if response is not None else None

    def _refuse_long_wait(self, method: str | None, url: str | None, response: Any, pool: Any) -> None:
        if response is None or response.status not in (403, 429, 503):
            return
        wait = rate_limit_wait(response.headers)
        if wait is not None and wait > self.max_wait:
            log.warning(
                "forge asked to wait %.0fs for %s %s (HTTP %s), more than the %.0fs we wait in a job",
                wait,
                method,
                _path(url),
                response.status,
                self.max_wait,
            )
            raise MaxRetryError(pool, url or "", ResponseError(f"rate limited for {wait:.0f}s"))

    def new(self, **kw: Any) -> Self:
        kw.setdefault("max_wait", self.max_wait)
        return cast(Self, super().new(**kw))  # type: ignore[misc]

    def increment(
        self,
        method: str | None = None,
        url: str | None = None,
        response: Any = None,
        error: Exception | None = None,
        _pool: Any = None,
        _stacktrace: Any = None,
    ) -> Self:
        self._refuse_long_wait(method, url, response, _pool)
        retry = cast(Self, super().increment(method, url, response, error, _pool, _stacktrace))  # type: ignore[misc]
        self._log_retry(method, url, response, error)
        return retry

    @staticmethod
    def _log_retry(method: str | None, url: str | None, response: Any, error: Exception | None) -> None:
        if response is not None:
            log.warning("forge answered HTTP %s to %s %s; retrying", response.status, method, _path(url))
        elif error is not None:
            log.warning("forge request %s %s failed (%s); retrying", method, _path(url), type(error).__name__)


def _path(url: str | None) -> str:
    """Only the path: query strings are not needed in logs (and could carry parameters we don't audit)."""
    return (url or "").split("?", 1)[0]


class ForgeRetry(_CappedWaitMixin, Retry):
    """``urllib3.Retry`` with Mergeway's policy; used on python-gitlab's session."""

    def __init__(self, *, max_wait: float = 60.0, **kwargs: Any) -> None:
        self.max_wait = max_wait
        super().__init__(**kwargs)


class GitHubForgeRetry(_CappedWaitMixin, GithubRetry):
    """PyGithub's ``GithubRetry`` (403 rate-limit detection) with Mergeway's policy and cap."""

    def __init__(self, *, max_wait: float = 60.0, **kwargs: Any) -> None:
        self.max_wait = max_wait
        kwargs.setdefault("max_rate_limit_wait", max_wait)
        super().__init__(**kwargs)


def _common(policy: RetryPolicy) -> dict[str, Any]:
    return {
        "total": policy.attempts,
        "connect": policy.attempts,
        "read": policy.attempts,
        "status": policy.attempts,
        "backoff_factor": policy.backoff_factor,
        "backoff_max": policy.backoff_max,
        "backoff_jitter": min(1.0, policy.backoff_factor),
        "allowed_methods": None,  # every verb: see the module docstring
        "raise_on_status": False,  # hand the last response back so the library raises its usual error
        "respect_retry_after_header": True,
        "max_wait": policy.max_wait,
    }


def github_retry(policy: RetryPolicy) -> GitHubForgeRetry:
    """The ``retry=`` argument for ``github.Github`` / ``GithubIntegration``."""
    return GitHubForgeRetry(
        status_forcelist=sorted(RETRY_STATUSES),
        secondary_rate_wait=policy.secondary_wait,
        **_common(policy),
    )


def gitlab_retry(policy: RetryPolicy) -> ForgeRetry:
    return ForgeRetry(status_forcelist=sorted(RETRY_STATUSES), **_common(policy))


def retrying_session(policy: RetryPolicy) -> requests.Session:
    """A ``requests.Session`` whose every request retries per ``policy`` (for python-gitlab)."""
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=gitlab_retry(policy))
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
