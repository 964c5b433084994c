"""The intake pipeline for one delivery: verify ▸ parse ▸ dedupe ▸ enqueue ▸ reply.

Plain Python over bytes and headers, so it can be driven without an HTTP server. The order is
deliberate:

1. authenticate first, so an unauthenticated sender learns nothing (not even whether its JSON parses);
2. parse before dedupe, so ignored events cost no Redis round trip;
3. claim the delivery id and the body's digest (a replayed body with a new id is a duplicate too)
   and queue the job, atomically in one Redis round trip; if Redis fails, nothing is claimed and the
   reply is 503, so the forge's redelivery is processed instead of being dropped as a duplicate.

Replies never contain secrets, received signatures/tokens or payload text beyond names and numbers.
"""

from __future__ import annotations

import logging
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

import redis

from mergeway import jsonfast, metrics
from mergeway.config import Settings
from mergeway.events import Event, Forge
from mergeway.intake import Ignored, Ping, github, gitlab
from mergeway.intake.dedupe import HMAC_PREFIX, Deduper, body_digest, delivery_id_for
from mergeway.intake.fields import InvalidPayloadError, opt_str
from mergeway.intake.publish import Publisher, RedisCeleryPublisher
from mergeway.intake.signatures import gitlab_scope_for, gitlab_token_scopes, verified_github_signature
from mergeway.jobs.kinds import route
from mergeway.logs import log_context

log = logging.getLogger("mergeway.intake")

#: Errors that mean "the queue is unreachable right now": answer 503 so the forge retries.
QUEUE_ERRORS: Final = (redis.RedisError, OSError)


@dataclass(frozen=True)
class Reply:
    """HTTP status and JSON body for the forge."""

    status: int
    body: dict[str, Any]
    #: Only for logs/metrics: the outcome label (queued, duplicate, ignored, ...).
    result: str = field(default="", compare=False)


class Headers(Protocol):
    """Request headers: werkzeug's case-insensitive ``Headers`` or a plain ``dict``."""

    def get(self, key: str, /) -> str | None: ...


def _header(headers: Headers, name: str) -> str | None:
    """Case-insensitive header lookup that works for plain dicts as well as WSGI header objects."""
    value = headers.get(name)
    if value is None and isinstance(headers, dict):
        lowered = name.lower()
        value = next((v for k, v in headers.items() if str(k).lower() == lowered), None)
    return value if isinstance(value, str) else None


class Intake:
    """One per process; thread-safe (the Redis client's pool is)."""

    def __init__(self, settings: Settings, client: redis.Redis, publisher: Publisher | None = None) -> None:
        self.settings = settings
        self.client = client
        self.deduper = Deduper(client, settings.dedupe_ttl_seconds)
        self.publisher: Publisher = publisher or RedisCeleryPublisher(client)
        self._latency = {forge: metrics.WEBHOOK_SECONDS.labels(forge) for forge in ("github", "gitlab")}

    def handle(self, forge: Forge, headers: Headers, body: bytes) -> Reply:
        """Process one delivery for ``forge`` and say what to answer."""
        started = time.perf_counter()
        event_label = "other"
        try:
            if forge == "github":
                event_label = self._label(forge, _header(headers, "X-GitHub-Event"))
            else:
                event_label = self._label(forge, gitlab.event_kind(_header(headers, "X-Gitlab-Event")))
            reply = self._handle(forge, headers, body)
        except Exception:
            # Reached only through a bug; the web layer would answer 500 anyway, but here it is counted.
            metrics.WEBHOOKS.labels(forge, event_label, "error").inc()
            raise
        metrics.WEBHOOKS.labels(forge, event_label, reply.result).inc()
        self._latency[forge].observe(time.perf_counter() - started)
        return reply

    @staticmethod
    def _label(forge: Forge, name: str | None) -> str:
        known = github.KNOWN_EVENTS if forge == "github" else gitlab.KNOWN_EVENTS
        return name if name in known else "other"

    def _handle(self, forge: Forge, headers: Headers, body: bytes) -> Reply:
        if forge not in self.settings.forges:
            return Reply(404, {"error": f"{forge} webhooks are not enabled on this server"}, "disabled")
        secret = self.settings.webhook_secret(forge)
        scoped = self.settings.gitlab_webhook_secrets
        scopes: frozenset[str | None] = frozenset({None})
        fingerprint = ""  # what claims the body against replays (see mergeway.intake.dedupe)
        if forge == "github":
            signature = verified_github_signature(secret, body, _header(headers, "X-Hub-Signature-256"))
            if signature is None:
                log.warning("rejected delivery: missing or invalid signature", extra={"forge": forge})
                return Reply(401, {"error": "missing or invalid X-Hub-Signature-256"}, "unauthorized")
            fingerprint = HMAC_PREFIX + signature
            raw_delivery = _header(headers, "X-GitHub-Delivery")
        else:
            scopes = gitlab_token_scopes(secret, scoped, _header(headers, "X-Gitlab-Token"))
            if not scopes:
                log.warning("rejected delivery: missing or invalid token", extra={"forge": forge})
                return Reply(401, {"error": "missing or invalid X-Gitlab-Token"}, "unauthorized")
            raw_delivery = _header(headers, "Idempotency-Key") or _header(headers, "X-Gitlab-Event-UUID")

        delivery_id = delivery_id_for(raw_delivery, body)
        if delivery_id is None:
            return Reply(400, {"error": "malformed delivery id header"}, "bad_request")
        with log_context(forge=forge, delivery_id=delivery_id):
            payload = _decode(body, _header(headers, "Content-Type") or "")
            if payload is None:
                return Reply(400, {"error": "body is not a JSON object"}, "bad_request")
            if (
                forge == "gitlab"
                and gitlab_scope_for(opt_str(payload, "project", "path_with_namespace"), scoped) not in scopes
            ):
                log.warning("rejected delivery: the token is not the secret of this project")
                return Reply(401, {"error": "X-Gitlab-Token is not valid for this project"}, "unauthorized")
            try:
                parsed = self._parse(forge, headers, delivery_id, payload)
            except InvalidPayloadError as exc:
                log.warning("rejected delivery: %s", exc)
                return Reply(400, {"error": str(exc)}, "bad_request")
            if isinstance(parsed, Ping):
                log.info("ping received")
                return Reply(200, {"status": "pong"}, "ping")
            if isinstance(parsed, Ignored):
                log.info("delivery ignored: %s", parsed.reason)
                return Reply(202, {"status": "ignored", "reason": parsed.reason}, "ignored")
            return self._enqueue(forge, delivery_id, fingerprint or body_digest(body), parsed)

    def _parse(
        self, forge: Forge, headers: Headers, delivery_id: str, payload: dict[str, Any]
    ) -> Event | Ignored | Ping:
        bots = self.settings.bot_logins
        if forge == "github":
            name = _header(headers, "X-GitHub-Event")
            if not name:
                raise InvalidPayloadError("X-GitHub-Event header is missing")
            return github.parse(name.strip(), delivery_id, payload, bot_logins=bots)
        kind = gitlab.event_kind(_header(headers, "X-Gitlab-Event"), payload)
        return gitlab.parse(kind, delivery_id, payload, bot_logins=bots)

    def _enqueue(self, forge: Forge, delivery_id: str, digest: str, event: Event) -> Reply:
        pr = getattr(getattr(event, "pr", None), "number", None)
        with log_context(repo=event.repo.full_name, pr=pr, event=event.kind):
            job = route(event)
            if job is None:
                reason = "pull request closed without merging: nothing to deploy"
                log.info("delivery ignored: %s", reason)
                return Reply(202, {"status": "ignored", "reason": reason, "event": event.kind}, "ignored")
            job_id = str(uuid.uuid4())
            queue, message = self.publisher.encode(job, event, job_id=job_id)
            try:
                first = self.deduper.claim_and_enqueue(
                    forge, delivery_id, job_id, digest=digest, queue=queue, message=message
                )
            except QUEUE_ERRORS as exc:
                log.error("could not enqueue %s job: %s", job, type(exc).__name__)
                return _unavailable()
            if not first:
                log.info("duplicate delivery dropped")
                return Reply(200, {"status": "duplicate"}, "duplicate")
            log.info("queued %s job", job, extra={"job": job, "job_id": job_id})
            return Reply(
                202,
                {
                    "status": "queued",
                    "job_id": job_id,
                    "job": job,
                    "event": event.kind,
                    "repo": event.repo.full_name,
                    "pr": pr,
                },
                "queued",
            )

    def ready(self) -> bool:
        """Readiness: Redis answers a PING."""
        try:
            return bool(self.client.ping())
        except QUEUE_ERRORS:
            return False


def _unavailable() -> Reply:
    return Reply(503, {"error": "job queue unavailable, please redeliver later"}, "unavailable")


def _decode(body: bytes, content_type: str) -> dict[str, Any] | None:
    """The JSON object in ``body``; GitHub's form-encoded variant (``payload=<json>``) is accepted too."""
    if content_type.split(";", 1)[0].strip().lower() == "application/x-www-form-urlencoded":
        try:
            fields = urllib.parse.parse_qs(body.decode("utf-8"), max_num_fields=16)
        except (ValueError, UnicodeDecodeError):
            return None
        values = fields.get("payload")
        if not values:
            return None
        body = values[0].encode("utf-8")
    data = _loads(body)
    return data if isinstance(data, dict) else None


def _loads(body: bytes) -> Any:
    """The parsed body (orjson when installed, :mod:`mergeway.jsonfast`), ``None`` when it is not JSON."""
    try:
        return jsonfast.loads(body)
    except (ValueError, RecursionError):
        return None
