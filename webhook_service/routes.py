"""HTTP routes and error handlers: a thin adapter between WSGI and :class:`~mergeway.intake.service.Intake`.

Every answer is JSON, including errors Flask raises itself (404, 405, 413) and unexpected ones
(500), so a forge's delivery log never shows an HTML page or a traceback.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Flask, Response, current_app, jsonify, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from mergeway import __version__, metrics
from mergeway.events import Forge
from mergeway.intake.service import Intake
from mergeway.jobs.kinds import QUEUES

log = logging.getLogger("webhook_service")
bp = Blueprint("webhooks", __name__)

_CHUNK = 64 * 1024


def _intake() -> Intake:
    intake: Intake = current_app.extensions["mergeway_intake"]
    return intake


def _json(status: int, body: dict[str, Any]) -> Response:
    response = jsonify(body)
    response.status_code = status
    return response


def read_body(limit: int) -> bytes:
    """The request body, refusing more than ``limit`` bytes without buffering them.

    A declared ``Content-Length`` over the limit is refused before reading anything; a chunked
    body is read in bounded chunks and refused as soon as it passes the limit.
    """
    length = request.content_length
    if length is not None and length > limit:
        raise RequestEntityTooLarge()
    stream = request.stream
    chunks: list[bytes] = []
    total = 0
    while True:
        chunk = stream.read(min(_CHUNK, limit + 1 - total))
        if not chunk:
            break
        total += len(chunk)
        if total > limit:
            raise RequestEntityTooLarge()
        chunks.append(chunk)
    return b"".join(chunks)


def _webhook(forge: Forge) -> Response:
    intake = _intake()
    body = read_body(intake.settings.max_body_bytes)
    reply = intake.handle(forge, request.headers, body)
    return _json(reply.status, reply.body)


@bp.post("/webhooks/github")
def github_webhook() -> Response:
    return _webhook("github")


@bp.post("/webhooks/gitlab")
def gitlab_webhook() -> Response:
    return _webhook("gitlab")


@bp.get("/healthz")
def healthz() -> Response:
    """Liveness: the process answers, and which release it is. Deliberately no dependency checks (see /readyz)."""
    return _json(200, {"status": "ok", "version": __version__})


@bp.get("/readyz")
def readyz() -> Response:
    """Readiness: Redis answers, so a delivery would be queued rather than refused with 503."""
    if _intake().ready():
        return _json(200, {"status": "ready"})
    return _json(503, {"error": "redis unreachable"})


@bp.get("/metrics")
def metrics_endpoint() -> Response:
    collector = metrics.QueueDepthCollector(_intake().client, tuple(QUEUES.values()))
    return Response(metrics.render([collector]), status=200, content_type=metrics.CONTENT_TYPE)


def _http_error(exc: HTTPException) -> Response:
    status = exc.code or 500
    if status == 413:
        forge = request.path.rsplit("/", 1)[-1]
        if forge in ("github", "gitlab"):
            metrics.WEBHOOKS.labels(forge, "other", "too_large").inc()
        return _json(413, {"error": "request body too large"})
    return _json(status, {"error": (exc.name or "error").lower()})


def _unexpected(exc: Exception) -> Response:
    # The traceback goes to the (redacted) log only; the forge sees a generic message.
    log.error("unhandled error on %s %s", request.method, request.path, exc_info=exc)
    return _json(500, {"error": "internal error"})


def register(app: Flask) -> None:
    app.register_blueprint(bp)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)
