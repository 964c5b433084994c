"""What a pull request is told when a job ended without its own outcome (see :mod:`workers.outcomes`).

``why`` is always Mergeway's own sentence (never an exception message, which could quote anything):
the worker's edge chooses it from what it saw (a time limit, a crash, an unexpected error).
"""

from __future__ import annotations


def description(why: str) -> str:
    """The commit status description of every status the job had left pending."""
    return f"Not finished: {why}"


def body(kind: str, job_id: str, why: str) -> str:
    """The comment: what happened, where an operator finds more, and how to try again."""
    again = (
        "Push a new commit or comment `/preview` to try again."
        if kind == "preview"
        else "Fix the cause, then merge a new change (or redeploy by hand with `mergeway apply`)."
    )
    return (
        f"⚠️ **Mergeway could not finish this {kind}**: {why}.\n\n"
        f"Job `{job_id}`: an operator finds the details in the worker logs under this id. " + again
    )


def given_up(attempts: int) -> str:
    return (
        f"the worker running it stopped {attempts} times (out of memory, killed or crashed), so it is not retried again"
    )


TIME_LIMIT = "it ran longer than its time limit"
HARD_TIME_LIMIT = "it ran longer than its time limit and was stopped"


def unexpected(error_type: str) -> str:
    return f"it failed unexpectedly ({error_type})"
