"""Git for workers: a mirror-and-worktree checkout cache, and a safe way to run git."""

from mergeway.git.cache import CheckoutCache, CheckoutError, FetchResult, LockTimeoutError, pr_head_ref
from mergeway.git.run import GitError, GitResult, GitTimeoutError, base_env, credential_env, run_git

__all__ = [
    "CheckoutCache",
    "CheckoutError",
    "FetchResult",
    "GitError",
    "GitResult",
    "GitTimeoutError",
    "LockTimeoutError",
    "base_env",
    "credential_env",
    "pr_head_ref",
    "run_git",
]
