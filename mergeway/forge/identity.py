"""Which repository a job is about, decided by the configured forge and never by the payload.

A webhook is authenticated by one secret per forge (or per GitLab group, see
:mod:`mergeway.intake.service`), so whoever holds it can write any payload. Nothing in a payload
may therefore choose where git connects, where the forge token is sent, or under which
repository's name something is deployed:

* clone URLs are built from the configured forge host (``GITHUB_API_URL`` / ``GITLAB_URL``) and the
  repository path, and git's credentials are confined to that host's origin
  (:func:`mergeway.git.run.credential_env` refuses any other);
* the repository's canonical name, id and default branch come from the forge API, addressed the
  way the forge client addresses it (GitLab: by project id; a payload whose path disagrees with its
  project id is refused);
* with a GitHub App, the installation a delivery names must be the one that owns the repository
  (``GET /repos/{owner}/{repo}/installation``), so one customer's installation cannot act on another's
  repository;
* a command's author and text are read back from the forge by comment id, on that pull request of
  that repository (:func:`verified_command`): a secret shared across repositories would otherwise let
  an admin of one run ``/rollback`` on another under a maintainer's name.
"""

from __future__ import annotations

import dataclasses
import re
from urllib.parse import urlsplit

from mergeway.commands import parse_command
from mergeway.config import Settings
from mergeway.events import Command, CommentCommand, IssueCommand, Repository
from mergeway.forge.base import CommentRef, Forge
from mergeway.forge.errors import ForgeError
from mergeway.forge.github import repo_installation_id
from mergeway.forge.retry import RetryPolicy

_SEGMENT = re.compile(r"[A-Za-z0-9_.][A-Za-z0-9_.-]*")  # ".github" is a real repository name
_DEFAULT_PORTS = {"http": 80, "https": 443}


class IdentityError(ForgeError):
    """A delivery's claims about its repository do not hold on the configured forge: refused."""


def git_base_url(forge: str, settings: Settings) -> str:
    """Where the configured forge serves git over HTTP(S), without a trailing slash.

    GitHub's API and git hosts differ: ``https://api.github.com`` → ``https://github.com``, GitHub
    Enterprise Server ``https://ghe.example/api/v3`` → ``https://ghe.example``, GitHub Enterprise
    Cloud ``https://api.acme.ghe.com`` → ``https://acme.ghe.com``. GitLab serves both on ``GITLAB_URL``.
    """
    if forge == "gitlab":
        return settings.gitlab_url.rstrip("/")
    parts = urlsplit(settings.github_api_url.rstrip("/"))
    host, path = parts.netloc, parts.path
    if path.endswith("/api/v3"):
        path = path[: -len("/api/v3")]
    elif host.lower().startswith("api."):
        host = host[len("api.") :]
    return f"{parts.scheme}://{host}{path}"


def check_path(forge: str, full_name: str) -> str:
    """``full_name`` when it is plain path segments (``owner/name``, GitLab subgroups); else refused.

    Checked before the name is put into any API or git URL, so ``..``, ``?``, ``@`` or an empty
    segment in a payload can never address anything but a repository.
    """
    segments = full_name.split("/")
    if len(segments) < 2 or not all(_SEGMENT.fullmatch(s) and s not in (".", "..") for s in segments):
        raise IdentityError(f"{forge}: {full_name[:100]!r} is not a repository path")
    return full_name


def clone_url(forge: str, full_name: str, settings: Settings) -> str:
    """The repository's git URL on the configured forge host; refuses a path that could escape it."""
    return f"{git_base_url(forge, settings)}/{check_path(forge, full_name)}.git"


def origin(url: str) -> str:
    """``scheme://host:port`` of ``url``, lower-cased with the default port made explicit."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or _DEFAULT_PORTS.get(scheme, 0)
    return f"{scheme}://{(parts.hostname or '').lower()}:{port}"


def git_origins(settings: Settings) -> frozenset[str]:
    """The only origins git may send credentials to: the configured forges' git hosts."""
    return frozenset(origin(git_base_url(forge, settings)) for forge in settings.forges)


def verified_repository(claimed: Repository, settings: Settings, forge: Forge, policy: RetryPolicy) -> Repository:
    """``claimed`` (from a delivery) as the configured forge knows it; :class:`IdentityError` if it does not hold."""
    if claimed.forge == "github" and settings.github_app_id:
        _check_installation(claimed, settings, policy)
    info = forge.repository_info()
    if claimed.forge == "gitlab":
        full_name = str(info.get("path_with_namespace") or "")
        if full_name.lower() != claimed.full_name.lower():
            raise IdentityError(
                f"GitLab: the delivery names project {claimed.full_name[:100]!r} with id {claimed.project_id}, "
                "but the forge has a different project under that id; refused"
            )
        project_id: int | None = int(info["id"])
        web_url = str(info.get("web_url") or "")
    else:
        full_name = str(info.get("full_name") or "")
        project_id = None
        web_url = str(info.get("html_url") or "")
    if not full_name:
        raise IdentityError(f"{forge.display_name}: the API did not name repository {claimed.full_name[:100]!r}")
    return dataclasses.replace(
        claimed,
        full_name=full_name,
        clone_url=clone_url(claimed.forge, full_name, settings),
        default_branch=str(info.get("default_branch") or claimed.default_branch),
        project_id=project_id,
        web_url=web_url,
    )


def _check_installation(claimed: Repository, settings: Settings, policy: RetryPolicy) -> None:
    if claimed.installation_id is None:
        raise IdentityError(
            f"GitHub: the delivery for {claimed.full_name[:100]} names no App installation; "
            "with GITHUB_APP_ID set, only the App's own webhook deliveries are accepted"
        )
    args = (settings.github_app_id, settings.github_app_private_key, claimed.full_name, settings.github_api_url)
    owner = repo_installation_id(*args, policy)
    if owner != claimed.installation_id:
        owner = repo_installation_id(*args, policy, fresh=True)  # reinstalled since we cached it?
    if owner != claimed.installation_id:
        raise IdentityError(
            f"GitHub: installation {claimed.installation_id} named by the delivery does not own "
            f"{claimed.full_name[:100]}; refused"
        )


def verified_command(event: CommentCommand, forge: Forge) -> CommentCommand:
    """``event`` with its author and command as the forge has the comment; :class:`IdentityError` if it has none.

    ``forge`` must be the verified repository's. The comment must exist on the event's pull request,
    must not be Mergeway's own, and must still carry a command; the author is the forge's, whatever the
    payload says, and so is the command (a payload could pair a maintainer's ``/preview`` with the
    word ``rollback``).
    """
    where = f"{forge.display_name}: comment {event.comment_id} on {forge.repo.full_name}#{event.pr.number}"
    comment = forge.get_comment(event.pr.number, event.comment_id)
    author, command = _read_back(forge, comment, where, event.command.name)
    return dataclasses.replace(event, author=author, command=command)


def verified_issue_command(event: IssueCommand, forge: Forge) -> IssueCommand:
    """:func:`verified_command` for a comment on an issue: the forge's author and command, or refused."""
    where = f"{forge.display_name}: comment {event.comment_id} on issue {forge.repo.full_name}#{event.issue}"
    comment = forge.get_issue_comment(event.issue, event.comment_id)
    author, command = _read_back(forge, comment, where, event.command.name)
    return dataclasses.replace(event, author=author, command=command)


def _read_back(forge: Forge, comment: CommentRef | None, where: str, name: str) -> tuple[str, Command]:
    """The comment's author and command as the forge has them; :class:`IdentityError` if it is not a user's ``name``."""
    if comment is None:
        raise IdentityError(f"{where} does not exist; the delivery's command is refused")
    if forge.identity().wrote(comment) or not comment.author:
        raise IdentityError(f"{where} is not a user's; refused")
    command = parse_command(comment.body)
    if command is None or command.name != name:
        raise IdentityError(f"{where} does not carry the delivery's command; refused")
    return comment.author, command
