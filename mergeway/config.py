"""Typed settings read from the environment, validated once at start-up.

Both edges (the Flask web service and the Celery worker) load :class:`Settings` when they start and
refuse to run with a clear message when something required is missing or malformed: a webhook
receiver without its secret would either accept forged deliveries or reject every real one, and
neither should be discovered at the first delivery. Every variable is documented in ``.env.example``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import MISSING, Field, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import quote

from mergeway import policy, renderjail
from mergeway.cachedir import user_cache as _user_cache
from mergeway.limits import DEFAULT_LIMITS, InputLimits
from mergeway.policy import Policy

Role = Literal["web", "worker", "cli"]
_N = TypeVar("_N", int, float)
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
    # Password hashes of the environments page: not secrets, but no child process needs them.
    "MERGEWAY_PAGE_USERS",
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

    This does not erase them from ``/proc/<pid>/environ``, which keeps the environment the process
    was started with: hence secrets as files (``MERGEWAY_SECRETS_DIR``) in the chart, and renderers
    that cannot read ``/proc`` at all (:mod:`mergeway.renderjail`).
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


def _number(env: Mapping[str, str], name: str, default: _N, *, minimum: _N) -> _N:
    """``name`` as a number of ``default``'s type (a whole number for ``int``), at least ``minimum``."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    kind = type(default)
    try:
        value = kind(raw)
    except ValueError:
        raise ConfigError(f"{name} must be {'a whole number' if kind is int else 'a number'}") from None
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


#: A directory of secret files, one per variable, named like it (a Kubernetes Secret volume).
SECRETS_DIR_VAR = "MERGEWAY_SECRETS_DIR"


def _secret(env: Mapping[str, str], name: str, default: str = "") -> str:
    """A secret from a file (``NAME_FILE``, else ``$MERGEWAY_SECRETS_DIR/NAME``), else inline.

    Files are the safe form: a variable in the process environment stays readable in
    ``/proc/<pid>/environ`` for the life of the process, whatever :func:`scrub_secrets` removes
    from ``os.environ``, while a file is read once, here, at start-up. The inline form is for
    ``make run`` and development.
    """
    path = env.get(f"{name}_FILE", "").strip()
    directory = env.get(SECRETS_DIR_VAR, "").strip()
    if not path and directory and (Path(directory) / name).is_file():
        path = str(Path(directory) / name)
    if path:
        try:
            return Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"{name}_FILE cannot be read: {exc.strerror}") from None
    return env.get(name, "").strip() or default


def _redis_url(env: Mapping[str, str], name: str, default: str) -> str:
    """``REDIS_URL`` (or a file), with the password from ``MERGEWAY_REDIS_PASSWORD`` (or a file) added.

    The URL itself may then carry no credentials, so it can stay a plain variable; a password
    already in the URL wins.
    """
    url = _secret(env, name, default)
    password = _secret(env, "MERGEWAY_REDIS_PASSWORD")
    scheme, sep, rest = url.partition("://")
    if not password or not sep or "@" in rest.split("/", 1)[0]:
        return url
    return f"{scheme}://:{quote(password, safe='')}@{rest}"


def _isolation(env: Mapping[str, str], name: str, default: str) -> str:
    """``MERGEWAY_RENDER_ISOLATION``: ``landlock`` (the default) or ``off``, nothing else."""
    raw = env.get(name, "").strip().lower() or default
    if raw not in ("landlock", "off"):
        raise ConfigError(f"{name} must be landlock or off")
    return raw


def _scoped_secrets(env: Mapping[str, str], name: str, default: Mapping[str, str]) -> dict[str, str]:
    """``group/sub=secret`` entries, separated by commas or newlines (``_FILE``: read from a file).

    The prefix is a GitLab namespace or project path; it matches itself and everything below it.
    """
    raw = _secret(env, name, "")
    scoped: dict[str, str] = {}
    for item in raw.replace("\n", ",").split(","):
        if not item.strip():
            continue
        prefix, sep, secret = item.partition("=")
        prefix = prefix.strip().strip("/").lower()
        if not sep or not prefix or not secret.strip() or any(not s for s in prefix.split("/")):
            raise ConfigError(f"{name} entries must look like group/project=secret")
        scoped[prefix] = secret.strip()
    return scoped or dict(default)


def _forges(env: Mapping[str, str], name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    forges = _list(env, name, default)
    unknown = [f for f in forges if f not in FORGES]
    if unknown:
        raise ConfigError(f"{name} names unknown forges: {', '.join(unknown)}")
    if not forges:
        raise ConfigError(f"{name} must name at least one of: {', '.join(FORGES)}")
    return forges


def _clusters(env: Mapping[str, str], name: str, default: Mapping[str, str]) -> dict[str, str]:
    """``name=kubeconfig-context`` entries: the cluster names repositories use, and their credentials."""
    clusters = dict(default)
    for item in _list(env, name, ()):
        cluster, sep, context = item.partition("=")
        if not sep or not cluster.strip() or not context.strip():
            raise ConfigError(f"{name} entries must look like name=kubeconfig-context")
        clusters[cluster.strip()] = context.strip()
    return clusters


def _policy_mode(env: Mapping[str, str], name: str, default: bool) -> bool:
    """``MERGEWAY_POLICY``: empty, or ``allow-all`` (nothing else, so a typo is not a silent allow)."""
    raw = env.get(name, "").strip().lower()
    if raw and raw != "allow-all":
        raise ConfigError(f"{name} must be empty or allow-all (a policy file goes in MERGEWAY_POLICY_FILE)")
    return raw == "allow-all" or default


def _url(env: Mapping[str, str], name: str, default: str) -> str:
    return (env.get(name, "").strip() or default).rstrip("/")


def _upper(env: Mapping[str, str], name: str, default: str) -> str:
    return (env.get(name, "").strip() or default).upper()


def _user_cache_var(env: Mapping[str, str], name: str, default: Path) -> Path:
    return _user_cache(env)


def _cache(env: Mapping[str, str], name: str, default: Path) -> Path:
    """``name`` if set, else the user's cache (which honours ``XDG_CACHE_HOME`` as the tooling does)."""
    raw = env.get(name, "").strip()
    return Path(raw).expanduser() if raw else _user_cache(env)


#: ``MERGEWAY_PAGE`` values; empty is ``off`` unless ``MERGEWAY_PAGE_USERS`` is set (then basic auth).
PAGE_MODES = ("off", "public", "proxy")
#: Password hash methods ``MERGEWAY_PAGE_USERS`` accepts (werkzeug.security's slow ones, never plain).
PAGE_HASH_METHODS = ("scrypt", "pbkdf2")


def _page_mode(env: Mapping[str, str], name: str, default: str) -> str:
    """``MERGEWAY_PAGE``: empty, ``off``, ``public`` or ``proxy`` (a typo must not open the page)."""
    raw = env.get(name, "").strip().lower()
    if raw and raw not in PAGE_MODES:
        raise ConfigError(f"{name} must be empty, off, public or proxy")
    return raw or default


def _page_users(env: Mapping[str, str], name: str, default: Mapping[str, str]) -> dict[str, str]:
    """``user:hash`` entries (commas or newlines; ``_FILE`` as for secrets), each hash werkzeug's.

    A hash looks like ``scrypt:32768:8:1$salt$hex`` (``mergeway page-hash`` prints one); a plain
    password or an unknown method is refused, so a mistake cannot leave the page open to anyone
    who guesses the value written in the file.
    """
    users: dict[str, str] = {}
    for item in _secret(env, name, "").replace("\n", ",").split(","):
        if not item.strip():
            continue
        user, sep, hashed = item.strip().partition(":")
        method = hashed.split(":", 1)[0]
        if not sep or not user or ":" in user or method not in PAGE_HASH_METHODS or hashed.count("$") != 2:
            raise ConfigError(
                f"{name} entries must look like user:hash, with a scrypt or pbkdf2 hash (mergeway page-hash)"
            )
        users[user] = hashed
    return users or dict(default)


def _networks(env: Mapping[str, str], name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    """Comma-separated addresses or CIDR networks, each checked (a typo must not trust everyone)."""
    import ipaddress

    items = _list(env, name, default)
    for item in items:
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise ConfigError(f"{name} entries must be IP addresses or networks (10.0.0.0/8)") from None
    return items


#: Reads one variable: ``(environment, variable name, the field's default) -> value``.
Reader = Callable[[Mapping[str, str], str, Any], Any]


def _var(name: str, *, minimum: float = 0, read: Reader | None = None) -> dict[str, Any]:
    """Field metadata: the variable ``name`` sets the field; numbers below ``minimum`` are refused."""
    return {"env": name, "minimum": minimum, "read": read}


def _read_field(f: Field[Any], env: Mapping[str, str]) -> Any:
    """The value of one :class:`Settings` field from ``env``: its reader's, else by its default's type."""
    name, read = f.metadata["env"], f.metadata["read"]
    default = f.default_factory() if f.default is MISSING else f.default  # type: ignore[operator]
    if read is not None:
        return read(env, name, default)
    if isinstance(default, bool):
        return _bool(env, name, default)
    if isinstance(default, int | float):
        return _number(env, name, default, minimum=type(default)(f.metadata["minimum"]))
    if isinstance(default, tuple):
        return _list(env, name, default)
    return env.get(name, "").strip() or default


@dataclass(frozen=True, repr=False)
class Settings:
    """Everything Mergeway reads from its environment.

    Each field names its variable and states its default once (:func:`_var`); :meth:`from_env`
    reads every field the same way, by the type of its default, unless the field names a reader.
    ``repr`` is disabled so that a settings object printed in a traceback or log never shows a
    secret; use :meth:`describe` for a safe summary.
    """

    redis_url: str = field(default="redis://127.0.0.1:6379/0", metadata=_var("REDIS_URL", read=_redis_url))
    forges: tuple[str, ...] = field(default=FORGES, metadata=_var("MERGEWAY_FORGES", read=_forges))
    github_webhook_secret: str = field(default="", metadata=_var("GITHUB_WEBHOOK_SECRET", read=_secret))
    gitlab_webhook_secret: str = field(default="", metadata=_var("GITLAB_WEBHOOK_SECRET", read=_secret))
    #: Per-group/project GitLab webhook secrets: path prefix (lower-case) → secret. A project under a
    #: prefix is accepted only with that prefix's secret (the longest prefix wins), never the global one.
    gitlab_webhook_secrets: Mapping[str, str] = field(
        default_factory=dict, metadata=_var("MERGEWAY_GITLAB_WEBHOOK_SECRETS", read=_scoped_secrets)
    )
    dedupe_ttl_seconds: int = field(default=72 * 3600, metadata=_var("MERGEWAY_DEDUPE_TTL_SECONDS", minimum=60))
    max_body_bytes: int = field(default=25 * 1024 * 1024, metadata=_var("MERGEWAY_MAX_BODY_BYTES", minimum=1024))
    bot_logins: tuple[str, ...] = field(default=(), metadata=_var("MERGEWAY_BOT_LOGINS"))

    github_api_url: str = field(default="https://api.github.com", metadata=_var("GITHUB_API_URL", read=_url))
    github_token: str = field(default="", metadata=_var("GITHUB_TOKEN", read=_secret))
    #: Not a secret, but kept in the worker's Secret beside the App's key, so read like one.
    github_app_id: str = field(default="", metadata=_var("GITHUB_APP_ID", read=_secret))
    github_app_private_key: str = field(default="", metadata=_var("GITHUB_APP_PRIVATE_KEY", read=_secret))
    gitlab_url: str = field(default="https://gitlab.com", metadata=_var("GITLAB_URL", read=_url))
    gitlab_token: str = field(default="", metadata=_var("GITLAB_TOKEN", read=_secret))

    #: Empty: the Kubernetes client's own default (``~/.kube/config``); never a local test cluster.
    kubeconfig: str = field(default="", metadata=_var("KUBECONFIG"))
    clusters: Mapping[str, str] = field(default_factory=dict, metadata=_var("MERGEWAY_CLUSTERS", read=_clusters))
    policy_file: str = field(default="", metadata=_var("MERGEWAY_POLICY_FILE"))
    #: ``MERGEWAY_POLICY=allow-all``: the operator's explicit choice to run without a policy file.
    policy_allow_all: bool = field(default=False, metadata=_var("MERGEWAY_POLICY", read=_policy_mode))
    #: The namespace this service runs in (the chart sets it from the pod's own): no policy may grant it.
    own_namespace: str = field(default="", metadata=_var("MERGEWAY_OWN_NAMESPACE"))
    allow_fork_previews: bool = field(default=False, metadata=_var("MERGEWAY_ALLOW_FORK_PREVIEWS"))
    #: Git mirrors and job worktrees.
    cache_dir: Path = field(default_factory=lambda: _user_cache({}), metadata=_var("MERGEWAY_CACHE_DIR", read=_cache))
    #: The user's cache, where ``tools/cluster/build.sh`` builds helm (even when ``cache_dir`` is elsewhere).
    user_cache_dir: Path = field(
        default_factory=lambda: _user_cache({}), metadata=_var("XDG_CACHE_HOME", read=_user_cache_var)
    )
    #: Explicit paths of the tools Mergeway runs (empty: found by :mod:`mergeway.binaries`).
    kubectl: str = field(default="", metadata=_var("MERGEWAY_KUBECTL"))
    helm: str = field(default="", metadata=_var("MERGEWAY_HELM"))
    public_url: str = field(default="", metadata=_var("MERGEWAY_PUBLIC_URL", read=_url))
    health_timeout_seconds: float = field(default=300.0, metadata=_var("MERGEWAY_HEALTH_TIMEOUT_SECONDS", minimum=1))
    dry_run_concurrency: int = field(default=16, metadata=_var("MERGEWAY_DRY_RUN_CONCURRENCY", minimum=1))
    forge_retries: int = field(default=5, metadata=_var("MERGEWAY_FORGE_RETRIES"))
    forge_backoff_seconds: float = field(default=0.5, metadata=_var("MERGEWAY_FORGE_BACKOFF_SECONDS"))
    forge_max_wait_seconds: float = field(default=60.0, metadata=_var("MERGEWAY_FORGE_MAX_WAIT_SECONDS"))
    forge_timeout_seconds: float = field(default=30.0, metadata=_var("MERGEWAY_FORGE_TIMEOUT_SECONDS", minimum=1))
    github_write_interval_seconds: float = field(default=1.0, metadata=_var("MERGEWAY_GITHUB_WRITE_INTERVAL_SECONDS"))
    git_timeout_seconds: float = field(default=600.0, metadata=_var("MERGEWAY_GIT_TIMEOUT_SECONDS", minimum=1))
    log_level: str = field(default="INFO", metadata=_var("LOG_LEVEL", read=_upper))
    worker_metrics_port: int = field(default=0, metadata=_var("MERGEWAY_WORKER_METRICS_PORT"))
    job_lease_seconds: float = field(default=60.0, metadata=_var("MERGEWAY_JOB_LEASE_SECONDS", minimum=5))
    job_max_attempts: int = field(default=3, metadata=_var("MERGEWAY_JOB_MAX_ATTEMPTS", minimum=1))
    preview_time_limit_seconds: float = field(
        default=900.0, metadata=_var("MERGEWAY_PREVIEW_TIME_LIMIT_SECONDS", minimum=30)
    )
    deploy_time_limit_seconds: float = field(
        default=3600.0, metadata=_var("MERGEWAY_DEPLOY_TIME_LIMIT_SECONDS", minimum=60)
    )
    #: How long a scheduler replica's lock outlives it: a standby takes over about this long after it died.
    beat_lock_seconds: float = field(default=30.0, metadata=_var("MERGEWAY_BEAT_LOCK_SECONDS", minimum=5))
    #: Seconds between two drift checks of each deployed environment (0: no scheduled checks; ``/drift`` still works).
    drift_interval_seconds: float = field(default=600.0, metadata=_var("MERGEWAY_DRIFT_INTERVAL_SECONDS", minimum=0))
    kube_retry_seconds: float = field(default=60.0, metadata=_var("MERGEWAY_KUBE_RETRY_SECONDS"))
    max_objects: int = field(default=DEFAULT_LIMITS.max_objects, metadata=_var("MERGEWAY_MAX_OBJECTS", minimum=1))
    max_rendered_bytes: int = field(
        default=DEFAULT_LIMITS.max_bytes, metadata=_var("MERGEWAY_MAX_RENDERED_BYTES", minimum=1024)
    )
    max_yaml_depth: int = field(default=DEFAULT_LIMITS.max_depth, metadata=_var("MERGEWAY_MAX_YAML_DEPTH", minimum=10))
    max_yaml_aliases: int = field(default=DEFAULT_LIMITS.max_aliases, metadata=_var("MERGEWAY_MAX_YAML_ALIASES"))
    max_render_files: int = field(
        default=DEFAULT_LIMITS.max_files, metadata=_var("MERGEWAY_MAX_RENDER_FILES", minimum=10)
    )
    #: Per renderer process (helm, kustomize): writable private memory (RLIMIT_DATA; Go tools
    #: need about 128 MiB to start) and CPU time; :mod:`mergeway.renderjail` sets both.
    render_memory_bytes: int = field(
        default=256 * 1024 * 1024, metadata=_var("MERGEWAY_RENDER_MEMORY_BYTES", minimum=128 * 1024 * 1024)
    )
    render_cpu_seconds: int = field(default=60, metadata=_var("MERGEWAY_RENDER_CPU_SECONDS", minimum=1))
    #: ``landlock``: renderers may read only the repository (refused when the kernel cannot);
    #: ``off``: the operator's explicit choice to run them with the worker's access.
    render_isolation: str = field(default="landlock", metadata=_var("MERGEWAY_RENDER_ISOLATION", read=_isolation))

    #: The web service's gunicorn (``webhook_service/gunicorn_conf.py``): ``MERGEWAY_BIND`` wins over ``PORT``.
    web_bind: str = field(default="", metadata=_var("MERGEWAY_BIND"))
    web_port: int = field(default=8080, metadata=_var("PORT", minimum=1))
    #: Gunicorn processes; 0: one per CPU this process may run on.
    web_processes: int = field(default=0, metadata=_var("WEB_CONCURRENCY"))
    web_threads: int = field(default=4, metadata=_var("MERGEWAY_WEB_THREADS", minimum=1))
    access_log: bool = field(default=False, metadata=_var("MERGEWAY_ACCESS_LOG"))
    #: How long a client has to send a whole request (line, headers, body) before it is refused with 408.
    request_timeout_seconds: float = field(default=5.0, metadata=_var("MERGEWAY_REQUEST_TIMEOUT_SECONDS", minimum=1))
    #: Request bytes one web process holds at once (being read or waiting for a thread); past it the
    #: largest request still being read is refused with 503. Never below ``max_body_bytes``.
    web_buffer_bytes: int = field(
        default=128 * 1024 * 1024, metadata=_var("MERGEWAY_WEB_BUFFER_BYTES", minimum=1024 * 1024)
    )
    #: The environments page (``/``, ``/api/environments``): who may read it. ``page_access`` says which mode.
    page_mode: str = field(default="", metadata=_var("MERGEWAY_PAGE", read=_page_mode))
    page_users: Mapping[str, str] = field(default_factory=dict, metadata=_var("MERGEWAY_PAGE_USERS", read=_page_users))
    #: With ``MERGEWAY_PAGE=proxy``: the header the auth proxy sets to the signed-in user, and the
    #: addresses the proxy connects from (a request from anywhere else is refused, header or not).
    page_proxy_header: str = field(default="X-Forwarded-User", metadata=_var("MERGEWAY_PAGE_PROXY_HEADER"))
    page_proxy_from: tuple[str, ...] = field(default=(), metadata=_var("MERGEWAY_PAGE_PROXY_FROM", read=_networks))
    page_refresh_seconds: int = field(default=30, metadata=_var("MERGEWAY_PAGE_REFRESH_SECONDS", minimum=5))

    @property
    def page_access(self) -> Literal["off", "public", "users", "proxy"]:
        """How the page is served: ``off`` (404), ``public``, ``users`` (basic auth) or ``proxy``."""
        if self.page_mode in ("public", "proxy"):
            return "public" if self.page_mode == "public" else "proxy"
        return "users" if self.page_users and self.page_mode != "off" else "off"

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
            f"policy={'file' if self.policy_file else ('allow-all' if self.policy_allow_all else 'none')} "
            f"page={self.page_access}"
        )

    def webhook_secret(self, forge: str) -> str:
        return self.github_webhook_secret if forge == "github" else self.gitlab_webhook_secret

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *, role: Role = "cli") -> Settings:
        """Read and validate settings; raises :class:`ConfigError` naming the first problem found."""
        env = _process_env() if env is None else env
        values = {f.name: _read_field(f, env) for f in fields(cls)}
        settings = cls(**values)
        settings.validate(role)
        return settings

    @classmethod
    def read(cls, name: str, env: Mapping[str, str] | None = None) -> Any:
        """One field, read from the environment exactly as :meth:`from_env` reads it, and nothing else.

        For code that needs a setting at the moment it runs (where a tool is, for each render)
        without reading every secret file again or being stopped by an unrelated variable.
        """
        env = _process_env() if env is None else env
        return _read_field(next(f for f in fields(cls) if f.name == name), env)

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
            self.check_isolation()
        if role in ("web", "worker"):
            self.load_policy()
        if role == "web":
            self.check_page()
        if self.log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ConfigError("LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR")

    def check_page(self) -> None:
        """Refuse page settings that are ambiguous or would trust anyone (the page stays off otherwise)."""
        if self.page_users and self.page_mode in ("public", "proxy"):
            raise ConfigError(f"MERGEWAY_PAGE_USERS is set, so MERGEWAY_PAGE must be empty, not {self.page_mode}")
        if self.page_mode == "proxy":
            if not self.page_proxy_from:
                raise ConfigError(
                    "MERGEWAY_PAGE=proxy needs MERGEWAY_PAGE_PROXY_FROM: the addresses of the auth proxy, "
                    "the only clients whose user header is believed"
                )
            if not self.page_proxy_header.strip() or ":" in self.page_proxy_header:
                raise ConfigError("MERGEWAY_PAGE_PROXY_HEADER must be a header name")

    def check_isolation(self) -> None:
        """Refuse to run renderers unconfined unless the operator said so (fail closed).

        Without Landlock a renderer could read every file and process the worker can, secrets
        included; each render would be refused anyway, so the worker refuses to start instead.
        """
        if self.render_isolation == "landlock" and renderjail.landlock_abi() < 1:
            raise ConfigError(
                "MERGEWAY_RENDER_ISOLATION=landlock: this kernel or container does not allow Landlock "
                "(Linux 5.13+ with Landlock enabled, and a seccomp profile that allows its system calls), "
                "so renderers could read the worker's secrets; run on such a node, or set "
                "MERGEWAY_RENDER_ISOLATION=off to accept that risk"
            )

    def input_limits(self) -> InputLimits:
        """The bounds on what one environment's render may read (:mod:`mergeway.limits`)."""
        return InputLimits(
            self.max_objects, self.max_rendered_bytes, self.max_yaml_depth, self.max_yaml_aliases, self.max_render_files
        )

    def load_policy(self) -> Policy:
        """The operator's policy, parsed; refuses (:class:`ConfigError`) to run without one.

        A service with no policy file would let any repository deploy anything anywhere, so that
        needs the explicit ``MERGEWAY_POLICY=allow-all``; both at once is ambiguous and refused too.
        The file is read once per process, when :meth:`validate` runs at start-up: every later call
        (each job) gets that policy, and so do job processes forked from it. An edit takes effect
        at the next restart, where a mistake stops the rollout instead of failing jobs.
        """
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
        grant = loaded.grants_namespace(self.own_namespace) if self.own_namespace else ""
        if grant:
            source = f"MERGEWAY_POLICY_FILE ({self.policy_file})" if self.policy_file else "MERGEWAY_POLICY"
            raise ConfigError(
                f"{source}: {grant}, the namespace Mergeway itself runs in (MERGEWAY_OWN_NAMESPACE): a "
                "repository could rewrite Mergeway's own ConfigMap (policy, kubeconfig) or its worker; run "
                "Mergeway in a namespace no rule grants, or list the namespaces each rule grants so none matches it"
            )
        return loaded


def _redact_url(url: str) -> str:
    """Drop a password from a URL before it is shown anywhere."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"
