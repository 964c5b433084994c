"""Which API-server failures are worth another try, and how long to keep trying.

An API server restart (an upgrade, a control-plane node replaced) takes seconds; a deploy that
gives up on the first refused connection leaves an environment half applied and a red PR for a
hiccup. So a request is retried, with jittered exponential backoff, while the failure is one the
server itself calls temporary:

* no answer at all: connection refused or reset, a timeout, a TLS handshake cut short;
* 429 (with ``Retry-After``, honoured up to 30 s), 500, 502, 503, 504 (etcd "leader changed" is a 500);
* 409 "the object has been modified": an update raced another writer (or an etcd leader change
  replayed it) and only needs to be sent again.

Everything else (400, 403, 404, 422, a field-manager conflict) is the API server's verdict on the
object and goes straight back to the caller, because it is what the PR comment must show.

Retries continue for at least ``min_attempts`` and then until ``budget`` seconds have passed since
the first try (``MERGEWAY_KUBE_RETRY_SECONDS``), so a short outage is ridden out and a lasting one
still fails in bounded time. Requests Mergeway sends are safe to repeat: server-side apply and
dry runs are idempotent, a repeated DELETE answers 404 (which callers treat as done) and GETs are
reads.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable

TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})
#: The message of a 409 that only means "send it again" (optimistic-concurrency conflict).
MODIFIED = b"the object has been modified"
#: Longest ``Retry-After`` honoured; a longer one is cut to this.
MAX_RETRY_AFTER = 30.0


def is_transient(status: int, body: bytes | None) -> bool:
    """Whether an HTTP answer from the API server is a temporary condition."""
    if status in TRANSIENT_STATUSES:
        return True
    return status == 409 and MODIFIED in (body or b"")


class RetryPolicy:
    """Backoff and limits shared by every request of one client."""

    def __init__(
        self,
        *,
        budget: float = 60.0,
        min_attempts: int = 4,
        base_delay: float = 0.2,
        max_delay: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        #: Keep retrying for this long after the first attempt (seconds), once ``min_attempts`` are used.
        self.budget = budget
        self.min_attempts = min_attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.clock = clock
        self.sleep = sleep

    def attempts(self) -> Attempts:
        """The retry state of one request, started now."""
        return Attempts(self, self.clock() + self.budget)

    def delay(self, attempt: int, retry_after: str | None) -> float:
        import random  # only once a request is retried: most CLI runs never are

        delay: float = min(self.base_delay * 2**attempt, self.max_delay) * (0.5 + random.random() / 2)  # noqa: S311
        if retry_after:
            with contextlib.suppress(ValueError):
                delay = max(0.0, min(float(retry_after), MAX_RETRY_AFTER))
        return delay


class Attempts:
    """The retry state of one request: attempts used, and when the budget runs out."""

    def __init__(self, policy: RetryPolicy, deadline: float) -> None:
        self.policy = policy
        self.deadline = deadline
        self.used = 0

    def again(self, retry_after: str | None = None) -> bool:
        """Wait before the next attempt and return ``True``, or ``False`` when the retries are spent."""
        delay = self.policy.delay(self.used + 1, retry_after)
        if self.used >= self.policy.min_attempts and self.policy.clock() + delay > self.deadline:
            return False
        self.used += 1
        self.policy.sleep(delay)
        return True
