"""The environments page's routes: access check, read the rows from Redis, answer HTML or JSON.

The edge stays thin: who may read (:mod:`mergeway.page.access`), what the rows hold
(:mod:`mergeway.page.model`) and how they look (:mod:`mergeway.page.html`) live in
:mod:`mergeway.page`. Every answer carries a Content-Security-Policy that allows no script at
all, so even a value that escaped escaping could not run.
"""

from __future__ import annotations

import logging
from typing import Any

import redis
from flask import Blueprint, Flask, Response, current_app, jsonify, request

from mergeway.config import Settings
from mergeway.deployments import Deployment
from mergeway.page import html
from mergeway.page.access import REALM, Gate
from mergeway.page.model import Board, Row, record_dict

bp = Blueprint("page", __name__)
log = logging.getLogger("webhook_service.page")

#: No script, no frames, no forms, nothing fetched: the inline stylesheet is all the page uses.
_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def _board() -> Board:
    return Board(current_app.extensions["mergeway_intake"].client)


def _settings() -> Settings:
    settings: Settings = current_app.config["MERGEWAY_SETTINGS"]
    return settings


def _refused() -> Response | None:
    """The answer when the request may not read the page (``None``: it may)."""
    gate: Gate = current_app.extensions["mergeway_page_gate"]
    decision = gate.check(request.headers, request.remote_addr)
    if decision.status == 200:
        return None
    names = {401: "unauthorized", 403: "forbidden", 404: "not found"}
    response = jsonify({"error": names.get(decision.status, "error")})
    response.status_code = decision.status
    if decision.status == 401:
        response.headers["WWW-Authenticate"] = f'Basic realm="{REALM}", charset="UTF-8"'
    return response


def _answer(body: str | dict[str, Any] | list[Any], status: int = 200) -> Response:
    response = (
        Response(body, status=status, content_type="text/html; charset=utf-8")
        if isinstance(body, str)
        else jsonify(body)
    )
    response.status_code = status
    response.headers.update(_HEADERS)
    return response


def _split(rest: str) -> tuple[str, str]:
    """``owner/name/environment`` → (``owner/name``, ``environment``)."""
    name, _, environment = rest.rstrip("/").rpartition("/")
    return name, environment


@bp.get("/")
def index() -> Response:
    return _refused() or _answer(html.index(_board().rows(), refresh=_settings().page_refresh_seconds))


@bp.get("/api/environments")
def index_json() -> Response:
    if refused := _refused():
        return refused
    rows = _board().rows(request.args.get("repository", ""), request.args.get("environment", ""))
    return _answer({"environments": [r.to_dict() for r in rows]})


@bp.get("/environments/<forge>/<path:rest>")
def environment(forge: str, rest: str) -> Response:
    found = _environment(forge, rest)
    if isinstance(found, Response):
        return found
    row, history = found
    return _answer(html.environment(row, history, refresh=_settings().page_refresh_seconds))


@bp.get("/api/environments/<forge>/<path:rest>")
def environment_json(forge: str, rest: str) -> Response:
    found = _environment(forge, rest)
    if isinstance(found, Response):
        return found
    row, history = found
    return _answer({**row.to_dict(), "history": [record_dict(d) for d in history]})


def _environment(forge: str, rest: str) -> tuple[Row, list[Deployment]] | Response:
    """One environment's row and history for both of its pages, or the refusal or 404 to answer instead."""
    if refused := _refused():
        return refused
    name, env = _split(rest)
    found = _board().environment(f"{forge}:{name}", env)
    return _answer({"error": "not found"}, 404) if found is None else found


@bp.errorhandler(redis.RedisError)
def _redis_down(exc: redis.RedisError) -> Response:
    """Redis unreachable: 503, as ``/readyz`` says, rather than a 500 for what is not a bug."""
    log.warning("environments page: redis unreachable (%s)", type(exc).__name__)
    return _answer({"error": "redis unreachable"}, 503)


def register(app: Flask, settings: Settings) -> None:
    app.extensions["mergeway_page_gate"] = Gate(settings)
    app.register_blueprint(bp)
