"""HTTP routes and error handlers: a thin adapter between WSGI and :class:`~mergeway.intake.service.Intake`.

Every answer is JSON, including errors Flask raises itself (404, 405, 413) and unexpected ones
(500), so a forge's delivery log never shows an HTML page or a traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from flask import Blueprint, Flask, Response, current_app, jsonify, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge
from werkzeug.http import HTTP_STATUS_CODES

from mergeway import __version__, jsonfast, metrics
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


StartResponse = Callable[..., Any]
_FAST_PATHS: dict[str, Forge] = {"/webhooks/github": "github", "/webhooks/gitlab": "gitlab"}
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class _EnvironHeaders:
    """Request headers straight from the WSGI environ (what :class:`Intake` reads of them)."""

    __slots__ = ("environ",)

    def __init__(self, environ: dict[str, Any]) -> None:
        self.environ = environ

    def get(self, key: str, /) -> str | None:
        name = _ENVIRON_KEYS.get(key)
        if name is None:  # intake asks by a handful of literal names: translated once each
            upper = key.upper().replace("-", "_")
            name = _ENVIRON_KEYS[key] = upper if upper in ("CONTENT_TYPE", "CONTENT_LENGTH") else "HTTP_" + upper
        value = self.environ.get(name)
        return value if isinstance(value, str) else None


#: Header name → WSGI environ key (PEP 3333: ``HTTP_`` + upper case, ``-`` as ``_``).
_ENVIRON_KEYS: dict[str, str] = {}


class WebhookFastPath:
    """``POST /webhooks/<forge>`` with a declared length within the limit, served as plain WSGI.

    Flask's request machinery (request context, routing, ``Request`` and ``Response`` objects,
    ``jsonify``) costs about as much CPU per delivery as verifying and parsing it, and a delivery
    needs none of it: the body, a few headers, a JSON answer. Every other request (other paths and
    methods, a chunked or oversized body, which Flask refuses with 413) goes to the Flask app, so
    answers and error handling are the same either way: the same :class:`Intake`, the same JSON
    bodies (as ``jsonify`` writes them), the same 500 for a bug, logged the same way.
    """

    def __init__(self, flask_app: WsgiApp, intake: Intake) -> None:
        self.flask_app = flask_app
        self.intake = intake
        self.limit = intake.settings.max_body_bytes

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        forge = _FAST_PATHS.get(environ.get("PATH_INFO", ""))
        length = environ.get("CONTENT_LENGTH") or ""
        if forge is None or environ.get("REQUEST_METHOD") != "POST" or not length.isdigit() or int(length) > self.limit:
            return self.flask_app(environ, start_response)
        try:
            body = environ["wsgi.input"].read(int(length))
            reply = self.intake.handle(forge, _EnvironHeaders(environ), body)
            status, answer = reply.status, reply.body
        except Exception as exc:
            log.error("unhandled error on POST %s", environ.get("PATH_INFO"), exc_info=exc)
            status, answer = 500, {"error": "internal error"}
        data = jsonfast.dumps_sorted_ascii(answer)  # byte for byte what jsonify answers
        start_response(
            f"{status} {HTTP_STATUS_CODES.get(status, 'UNKNOWN').upper()}",
            [("Content-Type", "application/json"), ("Content-Length", str(len(data)))],
        )
        return [data]


def register(app: Flask) -> None:
    app.register_blueprint(bp)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)
    app.wsgi_app = WebhookFastPath(app.wsgi_app, app.extensions["mergeway_intake"])  # type: ignore[method-assign]
