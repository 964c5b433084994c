"""The one way out: turns what a job decided (its reports and replies) into what the forge shows.

Jobs return outcomes (:class:`~mergeway.report.deploy.DeployReport`,
:class:`~mergeway.report.preview.PreviewReport`, a reply) and hand them to a :class:`Publisher`;
only this module calls the forge's comment, status and reaction methods (a test walks the code to
keep it so). That gives every job, for free and alike:

* the sticky comment per (kind, environment) and the commit status next to it, comments first and
  statuses last, so a final status always has the comment that explains it;
* the pull request's comment lock, so two jobs never race on its comments;
* the journal of statuses left ``pending`` (:data:`StatusJournal`), which lets the worker say on
  the pull request that a job ended without its outcome (:mod:`workers.outcomes`);
* one policy for a failure to publish: the forge clients retry each request (429, 5xx, connection
  errors: :mod:`mergeway.forge.retry`); an outcome is then tried again as a whole
  (:data:`OUTCOME_ATTEMPTS`: a sticky comment converges, a status repeats harmlessly) and a last
  failure is logged as an error naming what was lost. A deploy's outcome that cannot be published
  never fails the deploy: the cluster and the deployment record already hold the truth.

Later outputs (an issue per environment) are new methods here, fed by the same outcomes. The
forge's own deployments (:meth:`Publisher.deployment`) are fed by the deploy's reports at the
phases the deployment record follows.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TypeVar

from mergeway.deployments import ForgeDeploymentIds
from mergeway.drift import DriftCheck
from mergeway.forge.base import CommentRef, DeploymentUpdate, Forge, IssueRef, LockFactory, StatusState
from mergeway.metrics import DRIFT_OBJECTS
from mergeway.redaction import redact
from mergeway.report import allowance as allowance_texts
from mergeway.report import drift as issue_texts
from mergeway.report import driftcheck as drift_texts
from mergeway.report import forge_deployment as deployment_texts
from mergeway.report import gates as gate_texts
from mergeway.report import mergegroup as merge_group_texts
from mergeway.report import rollback as rollback_texts
from mergeway.report import unfinished as unfinished_texts
from mergeway.report.deploy import DeployReport, render_deploy
from mergeway.report.help import MARKER as HELP_MARKER
from mergeway.report.help import render_help
from mergeway.report.markdown import marker, refusal, status_kind, status_name
from mergeway.report.preview import PreviewReport, render_preview, render_summary, summary_rows

log = logging.getLogger("mergeway.report.publish")

#: Called after each commit status is set: ``(sha, state, context)``. The worker records the
#: pending ones per job, to turn them into errors if the job ends without its outcome.
StatusJournal = Callable[[str, StatusState, str], None]

#: How many times a job's final outcome is published before the failure is logged and given up.
OUTCOME_ATTEMPTS = 3
#: Seconds before the second attempt; doubled for each one after.
OUTCOME_BACKOFF = 1.0
#: Status contexts whose environment has a sticky comment of the same kind.
_COMMENTED_KINDS = ("preview", "deploy")

T = TypeVar("T")


class Publisher:
    """What one job shows on one pull request (``number``; 0 for none) of one repository's forge."""

    def __init__(
        self,
        forge: Forge,
        number: int,
        *,
        lock: LockFactory | None = None,
        target_url: str = "",
        journal: StatusJournal | None = None,
        deployment_ids: ForgeDeploymentIds | None = None,
    ) -> None:
        self.forge = forge
        self.number = number
        self.lock = lock
        self.target_url = target_url
        self.journal = journal
        #: Which forge deployment shows each (environment, commit): Redis when the job has it, else this job's.
        self.deployment_ids = deployment_ids
        self._deployments: dict[tuple[str, str], int] = {}
        #: The URL of each environment's deploy comment once written: the forge deployment's log.
        self._deploy_links: dict[str, str] = {}

    # -- the forge calls, all of them ---------------------------------------------------------------

    def _comment(self, key: str, body: str) -> CommentRef:
        return self.forge.upsert_comment(self.number, key, body, lock=self.lock)

    def _status(self, sha: str, state: StatusState, context: str, description: str, url: str = "") -> None:
        self.forge.set_status(sha, state, context, description, url or self.target_url)
        if self.journal is not None:
            self.journal(sha, state, context)

    def seen(self, comment_id: int) -> None:
        """Acknowledge a command at once (👀), before the work that answers it."""
        self.forge.add_reaction(self.number, comment_id, "eyes")

    # -- replies to commands ------------------------------------------------------------------------

    def refusal(self, command: str, author: str, *, nothing: str = "run") -> None:
        """The sticky reply to a command its author may not use."""
        key = marker("command", command)
        self._comment(key, f"{key}\n{refusal(author, command, nothing=nothing)}")

    def help(self, locks: Sequence[str] = ()) -> None:
        self._comment(HELP_MARKER, render_help(locks))

    def rollback_reply(self, text: str) -> None:
        self._comment(rollback_texts.MARKER, rollback_texts.render_reply(text))

    def allowance_reply(self, text: str) -> None:
        self._comment(allowance_texts.MARKER, allowance_texts.render_reply(text))

    def gate_reply(self, text: str) -> None:
        """The sticky reply to ``/lock``, ``/unlock`` and ``/deploy`` (one per pull request)."""
        self._comment(gate_texts.MARKER, gate_texts.render_reply(text))

    def drift_reply(self, text: str) -> None:
        self._comment(drift_texts.MARKER, drift_texts.render_reply(text))

    # -- deploys --------------------------------------------------------------------------------------

    def deploy(self, report: DeployReport) -> None:
        """The deploy comment of ``report.environment`` and its status on the merge commit; raises on failure.

        A status is never left behind by its comment: when the comment cannot be written, the status
        still is (linking to the server instead), then the comment's error is raised to be retried.
        """
        state, description = report.status()
        context = status_name("deploy", report.environment)
        try:
            body = render_deploy(report, limit=self.forge.comment_limit)
            ref = self._comment(marker("deploy", report.environment), body)
        except Exception:
            self._status(report.merge_sha, state, context, description)
            raise
        self._deploy_links[report.environment] = ref.url
        self._status(report.merge_sha, state, context, description, ref.url)

    def deploy_outcome(self, report: DeployReport) -> bool:
        """Publish a deploy's final outcome, retried; a last failure is logged, never raised (see the module)."""
        return self._outcome(f"the {report.state} of the deploy to {report.environment}", self.deploy, report)

    # -- the forge's deployments (its Environments view) ------------------------------------------

    def deployment(self, update: DeploymentUpdate) -> None:
        """Move the forge's deployment of (environment, commit) to ``update.state``, creating it first; raises.

        One deployment per (repository, environment, commit), whichever job gets there first: a
        re-run deploy (``/allow-destructive``, a redelivered job) moves the same one on. Its log is
        the deploy comment, once written.
        """
        link = self._deploy_links.get(update.environment, "")
        if link and not update.log_url:
            update = dataclasses.replace(update, log_url=link)
        known = self._deployment_id(update.environment, update.sha)
        if known is None:
            created = self.forge.create_deployment(update)
            if created is None:  # the forge cannot show this state on a new deployment: wait for the next
                return
            known = self._remember(update.environment, update.sha, created)
            if known != created:
                self.forge.update_deployment(created, deployment_texts.duplicate(update, known))
            elif self.forge.deployment_created_in_state:
                self._retire_previous(update, known)
                return
        self.forge.update_deployment(known, update)
        self._retire_previous(update, known)

    def _retire_previous(self, update: DeploymentUpdate, known: int) -> None:
        """After a success, the environment's previous successful deployment turns inactive where the forge
        leaves it active (GitHub's production environments); kept in Redis, so only with it."""
        if update.state != "success" or self.deployment_ids is None:
            return
        if self.forge.retires_previous_deployments(update.environment):
            return
        previous = self.deployment_ids.replace_active(update.environment, known)
        if previous is not None and previous != known:
            self.forge.update_deployment(previous, deployment_texts.replaced(update, known))

    def deployment_progress(self, update: DeploymentUpdate) -> None:
        """A deploy's progress on the forge's deployment: best effort, logged when it fails."""
        try:
            self.deployment(update)
        except Exception as exc:  # the outcome is published (and retried) by deployment_outcome
            log.warning(
                "could not set the %s deployment of %s: %s", update.state, update.environment, type(exc).__name__
            )

    def deployment_outcome(self, update: DeploymentUpdate) -> bool:
        """A deploy's final deployment state, retried like every outcome; never raises (see the module)."""
        return self._outcome(f"the {update.state} deployment to {update.environment}", self.deployment, update)

    def _deployment_unfinished(self, environment: str, commit: str, description: str) -> None:
        """A deploy that ended without its outcome leaves no deployment open on the forge: ``error``, saying why."""
        known = self._deployment_id(environment, commit)
        if known is None:
            return
        try:
            self.forge.update_deployment(known, DeploymentUpdate(environment, commit, "", "error", description))
        except Exception as exc:  # the comment and the statuses already say it
            log.warning("could not close the deployment of %s: %s", environment, type(exc).__name__)

    def _deployment_id(self, environment: str, commit: str) -> int | None:
        if (environment, commit) not in self._deployments and self.deployment_ids is not None:
            found = self.deployment_ids.get(environment, commit)
            if found is not None:
                self._deployments[(environment, commit)] = found
        return self._deployments.get((environment, commit))

    def _remember(self, environment: str, commit: str, deployment_id: int) -> int:
        kept = deployment_id
        if self.deployment_ids is not None:
            kept = self.deployment_ids.claim(environment, commit, deployment_id)
        self._deployments[(environment, commit)] = kept
        return kept

    # -- previews -------------------------------------------------------------------------------------

    def preview_pending(self, head_sha: str, environments: Iterable[str]) -> None:
        """Every environment about to be previewed shows it at once, before the slow renders and dry runs."""
        for env in environments:
            self._status(head_sha, "pending", status_name("preview", env), "Previewing…")

    def preview(self, report: PreviewReport) -> str:
        """The preview comment and status of ``report.environment``, unless a newer push arrived; the comment's URL."""
        if not self._still_head(report.head_sha):
            return ""
        ref = self._comment(
            marker("preview", report.environment), render_preview(report, limit=self.forge.comment_limit)
        )
        state, description = report.status()
        self._status(report.head_sha, state, status_name("preview", report.environment), description, ref.url)
        return ref.url

    def preview_note(self, report: PreviewReport) -> None:
        """A comment in the preview's slot of ``report.environment`` without a status (``/preview`` misnamed one)."""
        self._comment(marker("preview", report.environment), render_preview(report, limit=self.forge.comment_limit))

    def preview_summary(
        self, head_sha: str, reports: Sequence[PreviewReport], links: Mapping[str, str], order: Sequence[str]
    ) -> None:
        """One comment that says, per environment (in ``order``), what this pull request does there.

        When only some environments were previewed (``/preview staging``), the others keep their rows
        from the summary already there for this commit. Read and rewritten under the pull request's
        comment lock, so a concurrent preview cannot drop the rows this one keeps.
        """
        if not self._still_head(head_sha):
            return
        summary = marker("summary", "preview")
        with self.lock() if self.lock is not None else contextlib.nullcontext():
            kept: dict[str, str] = {}
            previewed = {r.environment for r in reports}
            if set(order) - previewed:
                for comment in self.forge.marked(self.number, summary)[:1]:
                    rows = summary_rows(comment.body, head_sha)
                    kept = {name: row for name, row in rows.items() if name in order and name not in previewed}
            body = render_summary(list(reports), dict(links), limit=self.forge.comment_limit, order=order, kept=kept)
            self.forge.upsert_comment(self.number, summary, body)

    def _still_head(self, head_sha: str) -> bool:
        """Whether ``head_sha`` is still the pull request's head: an older preview never overwrites a newer one."""
        current = self.forge.get_pull_request(self.number).head_sha
        if current != head_sha:
            log.info("preview of %s superseded by %s; not reporting", head_sha[:12], current[:12])
            return False
        return True

    # -- drift ----------------------------------------------------------------------------------------

    def drift(self, check: DriftCheck, *, helm: bool = False) -> bool:
        """Show one environment's drift check: the metric and the drift issue (:meth:`drift_issue`).

        The issue is published like an outcome (retried, a last failure logged, never raised): the
        check's result is already stored, and the next check publishes again. ``helm``: the
        environment is rendered by Helm, so the issue says adopting is manual.
        """
        DRIFT_OBJECTS.labels(check.repository, check.environment).set(len(check.objects))

        def publish(found: DriftCheck) -> None:
            self.drift_issue(found, helm=helm)

        return self._outcome(f"the drift issue of {check.environment}", publish, check)

    # -- the drift issue (one per repository and environment) ------------------------------------------

    def drift_issue(self, check: DriftCheck, *, helm: bool = False, note: str = "") -> IssueRef | None:
        """Open, edit or close ``check.environment``'s drift issue; the issue still open, if any.

        Opened on the first drift, edited in place as it changes (only when its text does), closed
        with a comment once a check finds none. A check that could not compare changes nothing but
        a line on an open issue: absent evidence is not "no drift". Its error passes through
        :func:`~mergeway.redaction.redact` first, like every text Mergeway shows.
        """
        key = issue_texts.issue_marker(check.environment)
        guard = self.lock() if self.lock is not None else contextlib.nullcontext()
        with guard:
            issue = self.forge.find_issue(key)
            if check.error:
                if issue is not None:
                    line = issue_texts.check_failed(check.environment, redact(check.error))
                    if line not in issue.body:
                        body = f"{issue.body.rstrip()}\n\n{line}\n"
                        self.forge.edit_issue(issue.number, issue.title, body[: self.forge.comment_limit])
                return issue
            if not check.drifted:
                if issue is not None:
                    closing = issue_texts.closed_comment(check.environment, check.commit)
                    self.forge.close_issue(issue.number, f"{note}\n\n{closing}" if note else closing)
                return None
            title = issue_texts.title(check.environment)
            body = issue_texts.render_issue(check, limit=self.forge.comment_limit, helm=helm, note=note)
            if issue is None:
                return self.forge.open_issue(title, body)
            if issue.body != body or issue.title != title:
                return self.forge.edit_issue(issue.number, title, body)
            return issue

    def issue_reply(self, issue: int, text: str) -> None:
        """A reply on the drift issue to its commands (``/revert-drift``, ``/lock``...): a new comment each time.

        Replies carry errors from the cluster, git and the drift check: scrubbed of every known secret.
        """
        self.forge.comment_on_issue(issue, redact(text))

    # -- merge queue groups (no pull request of their own) -------------------------------------------

    def merge_group_pending(self, head_sha: str, environments: Iterable[str]) -> None:
        """The group's head shows every environment as being previewed, as a pull request's does."""
        self.preview_pending(head_sha, environments)

    def merge_group_status(self, report: PreviewReport) -> None:
        """The ``mergeway/preview/<env>`` status on the group's head: what the merge queue requires.

        No ``_still_head`` check: the group's head never moves (a changed queue is a new group).
        """
        state, description = report.status()
        self._status(report.head_sha, state, status_name("preview", report.environment), description)

    def merge_group_cancelled(self, head_sha: str, environments: Iterable[str], reason: str) -> None:
        """Environments a destroyed group did not finish are not left pending: an error that says why."""
        description = merge_group_texts.cancelled_description(reason)
        for env in environments:
            self._status(head_sha, "error", status_name("preview", env), description)

    def merge_group_comment(self, numbers: Iterable[int], body: str) -> None:
        """The merge queue's sticky comment on each pull request of the group.

        Without the pull request's comment lock: only merge-group jobs write this marker, and the
        newest group's words are the ones worth keeping.
        """
        text = merge_group_texts.fit(body, self.forge.comment_limit)
        for number in numbers:
            self.forge.upsert_comment(number, merge_group_texts.MARKER, text)

    # -- jobs that ended without their outcome ------------------------------------------------------

    def unfinished(
        self, kind: str, job_id: str, why: str, pending: Sequence[tuple[str, str]], fallback_sha: str
    ) -> None:
        """Tell the pull request that the ``kind`` job ended without its outcome; its pending statuses become errors.

        Comments first, statuses last (as the jobs themselves do): once a status is final, its
        comment already says why. ``pending`` is ``(sha, context)`` of each status left pending.
        """
        body = unfinished_texts.body(kind, job_id, why)
        description = unfinished_texts.description(why)
        commented = not self.number  # no pull request (a merge queue group): the statuses say it
        for _, context in pending:
            ckind, env = status_kind(context)
            if ckind in _COMMENTED_KINDS and env and self.number:
                self._comment(marker(ckind, env), f"{marker(ckind, env)}\n{body}")
                commented = True
        if not commented:
            self._comment(marker(kind, "job"), f"{marker(kind, 'job')}\n{body}")
        for sha, context in pending:
            self._status(sha, "error", context, description)
            ckind, env = status_kind(context)
            if ckind == "deploy" and env:
                self._deployment_unfinished(env, sha, description)
        if not pending and fallback_sha:
            self._status(fallback_sha, "error", status_name(kind), description)

    # -- the failure policy ---------------------------------------------------------------------------

    def _outcome(self, what: str, publish: Callable[[T], None], outcome: T) -> bool:
        for attempt in range(1, OUTCOME_ATTEMPTS + 1):
            try:
                publish(outcome)
                return True
            except Exception as exc:  # the forge's errors, the comment lock's, a connection's
                if attempt == OUTCOME_ATTEMPTS:
                    log.error(
                        "could not publish %s on #%d after %d attempts: %s: %s",
                        what,
                        self.number,
                        attempt,
                        type(exc).__name__,
                        exc,
                    )
                    return False
                log.warning("could not publish %s (attempt %d): %s; retrying", what, attempt, type(exc).__name__)
                time.sleep(OUTCOME_BACKOFF * 2 ** (attempt - 1))
        return False
