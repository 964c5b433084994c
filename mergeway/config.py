"""Typed settings read from the environment, validated once at start-up.

Both edges (the Flask web service and the Celery worker) load :class:`Settings` when they start and
refuse to run with a clear message when something required is missing or malformed: a webhook
receiver without its secret would either accept forged deliveries or reject every real one, and
neither should be discovered at the first delivery. Every variable is documented in ``.env.example``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from mergeway.policy import Policy

Role = Literal["web", "worker", "cli"]
FORGES = ("github", "gitlab")


#: Variables that hold a secret (or, for REDIS_URL, may embed a password). :func:`scrub_secrets`
#: takes them out of ``os.environ`` once a process has read its settings.
SECRET_ENV_VARS = (
    "GITHUB_TOKEN",
    "GITHUB_APP_PRIVATE_KEY",
    "GITLAB_TOKEN",
    "GITHUB_WEBHOOK_SECRET",
    "GITLAB_WEBHOOK_SECRET",
    "REDIS_URL",
    # The Helm chart's Redis password, which Kubernetes expands into REDIS_URL.
    "MERGEWAY_REDIS_PASSWORD",
)
#: Secrets taken out of ``os.environ``, still visible to :meth:`Settings.from_env` in this process.
_held_secrets: dict[str, str] = {}
#: Policies this process has read, by file (``""``: allow-all); see :meth:`Settings.load_policy`.
_policies: dict[str, Policy] = {}


def scrub_secrets() -> None:
    """Remove secrets from ``os.environ`` so no child process can inherit them.

    Renderers run templates a pull request controls, and any child started with an inherited
    environment (a library's helper, a debugging shell, a future tool) would otherwise carry forge
    tokens and webhook secrets with it. Each edge calls this right after reading its settings; the
    values stay readable by :meth:`Settings.from_env` in this process (and in forked children, which
    share its memory), so code that reads settings later keeps working.
    """
    for name in SECRET_ENV_VARS:
        value = os.environ.pop(name, None)
        if value is not None:
            _held_secrets[name] = value


def _process_env() -> Mapping[str, str]:
    """``os.environ`` plus the secrets :func:`scrub_secrets` took out of it (a value set again wins)."""
    return {**_held_secrets, **os.environ} if _held_secrets else os.environ


class ConfigError(ValueError):
    """A setting is missing or invalid. The message names the variable, never its value."""


def _int(env: Mapping[str, str], name: str, default: int, *, minimum: int = 0) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}")
    return value


def _float(env: Mapping[str, str], name: str, default: float, *, minimum: float = 0.0) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false")


def _list(env: Mapping[str, str], name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    raw = env.get(name)
    if raw is None:
        return default
    return tuple(item.strip() for item in raw.split(",") if item.strip())


def _secret(env: Mapping[str, str], name: str) -> str:
    """A secret given inline or, with the ``_FILE`` suffix, as a path (for Kubernetes Secret mounts)."""
    path = env.get(f"{name}_FILE", "").strip()
    if path:
        try:
            return Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"{name}_FILE cannot be read: {exc.strerror}") from None
    return env.get(name, "").strip()


@dataclass(frozen=True, repr=False)
class Settings:
    """Everything Mergeway reads from its environment.

    ``repr`` is disabled so that a settings object printed in a traceback or log never shows a
    secret; use :meth:`describe` for a safe summary.
    """

    redis_url: str = "redis://127.0.0.1:6379/0"
    forges: tuple[str, ...] = FORGES
    github_webhook_secret: str = ""
    gitlab_webhook_secret: str = ""
    #: Per-group/project GitLab webhook secrets: path prefix (lower-case) → secret. A project under a
    #: prefix is accepted only with that prefix's secret (the longest prefix wins), never the global one.
    gitlab_webhook_secrets: Mapping[str, str] = field(default_factory=dict)
    dedupe_ttl_seconds: int = 72 * 3600
    max_body_bytes: int = 25 * 1024 * 1024
    bot_logins: tuple[str, ...] = ()

    github_api_url: str = "https://api.github.com"
    github_token: str = ""
    github_app_id: str = ""
    github_app_private_key: str = ""
    gitlab_url: str = "https://gitlab.com"
    gitlab_token: str = ""

    kubeconfig: str = ""
    clusters: Mapping[str, str] = field(default_factory=dict)
    policy_file: str = ""
    #: ``MERGEWAY_POLICY=allow-all``: the operator's explicit choice to run without a policy file.
    policy_allow_all: bool = False
    allow_fork_previews: bool = False
    cache_dir: Path = Path.home() / ".cache" / "mergeway"
    public_url: str = ""
    health_timeout_seconds: float = 300.0
    dry_run_concurrency: int = 16
    forge_retries: int = 5
    forge_backoff_seconds: float = 0.5
    forge_max_wait_seconds: float = 60.0
    forge_timeout_seconds: float = 30.0
    github_write_interval_seconds: float = 1.0
    git_timeout_seconds: float = 600.0
    log_level: str = "INFO"
    worker_metrics_port: int = 0
    job_lease_seconds: float = 60.0
    job_max_attempts: int = 3
    preview_time_limit_seconds: float = 900.0
    deploy_time_limit_seconds: float = 3600.0
    kube_retry_seconds: float = 60.0
    max_objects: int = 5000
    max_rendered_bytes: int = 32 * 1024 * 1024
    max_yaml_depth: int = 100
    max_yaml_aliases: int = 100

    def __repr__(self) -> str:
        return f"Settings({self.describe()})"

    def describe(self) -> str:
        """A one-line summary that is safe to log: it names which secrets are set, not their values."""
        return (
            f"redis={_redact_url(self.redis_url)} forges={','.join(self.forges)} "
            f"github_secret={'set' if self.github_webhook_secret else 'unset'} "
            f"gitlab_secret={'set' if self.gitlab_webhook_secret else 'unset'} "
            f"gitlab_scoped_secrets={len(self.gitlab_webhook_secrets)} "
            f"github_auth={'app' if self.github_app_id else ('token' if self.github_token else 'none')} "
            f"gitlab_auth={'token' if self.gitlab_token else 'none'} clusters={sorted(self.clusters)} "
            f"policy={'file' if self.policy_file else ('allow-all' if self.policy_allow_all else 'none')}"
        )

    def webhook_secret(self, forge: str) -> str:
        return self.github_webhook_secret if forge == "github" else self.gitlab_webhook_secret

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *, role: Role = "cli") -> Settings:
        """Read and validate settings; raises :class:`ConfigError` naming the first problem found."""
        env = _process_env() if env is None else env
        forges = _list(env, "MERGEWAY_FORGES", FORGES)
        unknown = [f for f in forges if f not in FORGES]
        if unknown:
            raise ConfigError(f"MERGEWAY_FORGES names unknown forges: {', '.join(unknown)}")
        if not forges:
            raise ConfigError("MERGEWAY_FORGES must name at least one of: github, gitlab")
        clusters: dict[str, str] = {}
        for item in _list(env, "MERGEWAY_CLUSTERS", ()):
            name, sep, context = item.partition("=")
            if not sep or not name.strip() or not context.strip():
                raise ConfigError("MERGEWAY_CLUSTERS entries must look like name=kubeconfig-context")
            clusters[name.strip()] = context.strip()
        settings = cls(
            redis_url=env.get("REDIS_URL", "").strip() or cls.redis_url,
            forges=forges,
            github_webhook_secret=_secret(env, "GITHUB_WEBHOOK_SECRET"),
            gitlab_webhook_secret=_secret(env, "GITLAB_WEBHOOK_SECRET"),
            gitlab_webhook_secrets=_scoped_secrets(env, "MERGEWAY_GITLAB_WEBHOOK_SECRETS"),
            dedupe_ttl_seconds=_int(env, "MERGEWAY_DEDUPE_TTL_SECONDS", cls.dedupe_ttl_seconds, minimum=60),
            max_body_bytes=_int(env, "MERGEWAY_MAX_BODY_BYTES", cls.max_body_bytes, minimum=1024),
            bot_logins=_list(env, "MERGEWAY_BOT_LOGINS", ()),
            github_api_url=(env.get("GITHUB_API_URL", "").strip() or cls.github_api_url).rstrip("/"),
            github_token=_secret(env, "GITHUB_TOKEN"),
            github_app_id=env.get("GITHUB_APP_ID", "").strip(),
            github_app_private_key=_secret(env, "GITHUB_APP_PRIVATE_KEY"),
            gitlab_url=(env.get("GITLAB_URL", "").strip() or cls.gitlab_url).rstrip("/"),
            gitlab_token=_secret(env, "GITLAB_TOKEN"),
            kubeconfig=env.get("KUBECONFIG", "").strip() or _local_cluster_kubeconfig(env),
            clusters=clusters,
            policy_file=env.get("MERGEWAY_POLICY_FILE", "").strip(),
            policy_allow_all=_policy_mode(env),
            allow_fork_previews=_bool(env, "MERGEWAY_ALLOW_FORK_PREVIEWS", False),
            cache_dir=Path(env.get("MERGEWAY_CACHE_DIR", "").strip() or cls.cache_dir).expanduser(),
            public_url=env.get("MERGEWAY_PUBLIC_URL", "").strip().rstrip("/"),
            health_timeout_seconds=_float(env, "MERGEWAY_HEALTH_TIMEOUT_SECONDS", 300.0, minimum=1.0),
            dry_run_concurrency=_int(env, "MERGEWAY_DRY_RUN_CONCURRENCY", 16, minimum=1),
            forge_retries=_int(env, "MERGEWAY_FORGE_RETRIES", 5, minimum=0),
            forge_backoff_seconds=_float(env, "MERGEWAY_FORGE_BACKOFF_SECONDS", 0.5),
            forge_max_wait_seconds=_float(env, "MERGEWAY_FORGE_MAX_WAIT_SECONDS", 60.0),
            forge_timeout_seconds=_float(env, "MERGEWAY_FORGE_TIMEOUT_SECONDS", 30.0, minimum=1.0),
            github_write_interval_seconds=_float(env, "MERGEWAY_GITHUB_WRITE_INTERVAL_SECONDS", 1.0),
            git_timeout_seconds=_float(env, "MERGEWAY_GIT_TIMEOUT_SECONDS", 600.0, minimum=1.0),
            log_level=(env.get("LOG_LEVEL", "").strip() or "INFO").upper(),
            worker_metrics_port=_int(env, "MERGEWAY_WORKER_METRICS_PORT", 0, minimum=0),
            job_lease_seconds=_float(env, "MERGEWAY_JOB_LEASE_SECONDS", 60.0, minimum=5.0),
            job_max_attempts=_int(env, "MERGEWAY_JOB_MAX_ATTEMPTS", 3, minimum=1),
            preview_time_limit_seconds=_float(env, "MERGEWAY_PREVIEW_TIME_LIMIT_SECONDS", 900.0, minimum=30.0),
            deploy_time_limit_seconds=_float(env, "MERGEWAY_DEPLOY_TIME_LIMIT_SECONDS", 3600.0, minimum=60.0),
            kube_retry_seconds=_float(env, "MERGEWAY_KUBE_RETRY_SECONDS", 60.0),
            max_objects=_int(env, "MERGEWAY_MAX_OBJECTS", cls.max_objects, minimum=1),
            max_rendered_bytes=_int(env, "MERGEWAY_MAX_RENDERED_BYTES", cls.max_rendered_bytes, minimum=1024),
            max_yaml_depth=_int(env, "MERGEWAY_MAX_YAML_DEPTH", cls.max_yaml_depth, minimum=10),
            max_yaml_aliases=_int(env, "MERGEWAY_MAX_YAML_ALIASES", cls.max_yaml_aliases, minimum=0),
        )
        settings.validate(role)
        return settings

    def validate(self, role: Role) -> None:
        """Refuse configurations that would fail later, at the worst moment."""
        if not self.redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise ConfigError("REDIS_URL must start with redis://, rediss:// or unix://")
        if role == "web":
            for forge in self.forges:
                if not self.webhook_secret(forge) and not (forge == "gitlab" and self.gitlab_webhook_secrets):
                    var = f"{forge.upper()}_WEBHOOK_SECRET"
                    raise ConfigError(
                        f"{var} is required while {forge} is enabled (MERGEWAY_FORGES); "
                        f"set it, or remove {forge} from MERGEWAY_FORGES"
                    )
        if role == "worker":
            if "github" in self.forges and not (self.github_token or self.github_app_id):
                raise ConfigError("GITHUB_TOKEN or GITHUB_APP_ID is required while github is enabled")
            if self.github_app_id and not self.github_app_private_key:
                raise ConfigError("GITHUB_APP_PRIVATE_KEY is required with GITHUB_APP_ID")
            if "gitlab" in self.forges and not self.gitlab_token:
                raise ConfigError("GITLAB_TOKEN is required while gitlab is enabled")
        if role in ("web", "worker"):
            self.load_policy()
        if self.log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ConfigError("LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR")

    def load_policy(self) -> Policy:
        """The operator's policy, parsed; refuses (:class:`ConfigError`) to run without one.

        A service with no policy file would let any repository deploy anything anywhere, so that
        needs the explicit ``MERGEWAY_POLICY=allow-all``; both at once is ambiguous and refused too.
        The file is read once per process, when :meth:`validate` runs at start-up: every later call
        (each job) gets that policy, and so do job processes forked from it. An edit takes effect
        at the next restart, where a mistake stops the rollout instead of failing jobs.
        """
        from mergeway import policy

        if self.policy_file and self.policy_allow_all:
            raise ConfigError("set MERGEWAY_POLICY_FILE or MERGEWAY_POLICY=allow-all, not both")
        if not self.policy_file and not self.policy_allow_all:
            raise ConfigError(
                "no policy: set MERGEWAY_POLICY_FILE to the operator's policy file (which repositories may "
                "deploy what, where), or MERGEWAY_POLICY=allow-all to let every repository deploy anything "
                "to every configured cluster (single-team installs and local use only)"
            )
        loaded = _policies.get(self.policy_file)
        if loaded is None:
            try:
                loaded = _policies[self.policy_file] = policy.load(self.policy_file)
            except policy.PolicyError as exc:
                raise ConfigError(f"MERGEWAY_POLICY_FILE ({self.policy_file}): {exc}") from None
        return loaded


def _policy_mode(env: Mapping[str, str]) -> bool:
    """``MERGEWAY_POLICY``: empty, or ``allow-all`` (nothing else, so a typo is not a silent allow)."""
    raw = env.get("MERGEWAY_POLICY", "").strip().lower()
    if raw and raw != "allow-all":
        raise ConfigError("MERGEWAY_POLICY must be empty or allow-all (a policy file goes in MERGEWAY_POLICY_FILE)")
    return raw == "allow-all"


def _scoped_secrets(env: Mapping[str, str], name: str) -> dict[str, str]:
    """``group/sub=secret`` entries, separated by commas or newlines (``_FILE``: read from a file).

    The prefix is a GitLab namespace or project path; it matches itself and everything below it.
    """
    raw = _secret(env, name)
    scoped: dict[str, str] = {}
    for item in raw.replace("\n", ",").split(","):
        if not item.strip():
            continue
        prefix, sep, secret = item.partition("=")
        prefix = prefix.strip().strip("/").lower()
        if not sep or not prefix or not secret.strip() or any(not s for s in prefix.split("/")):
            raise ConfigError(f"{name} entries must look like group/project=secret")
        scoped[prefix] = secret.strip()
    return scoped


def _redact_url(url: str) -> str:
    """Drop a password from a URL before it is shown anywhere."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"


def _local_cluster_kubeconfig(env: Mapping[str, str]) -> str:
    """The local cluster's kubeconfig (``make cluster``) when it exists: the built-in default target.

    Only used when ``KUBECONFIG`` is unset, so a configured cluster always wins; and only when the
    local cluster has been started, so a production worker never silently targets a stale file.
    """
    state = env.get("MERGEWAY_CLUSTER_DIR", "").strip()
    path = Path(state) if state else Path.home() / ".cache" / "mergeway" / "cluster-state"
    kubeconfig = path / "kubeconfig"
    return str(kubeconfig) if kubeconfig.is_file() else ""
