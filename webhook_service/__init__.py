"""The webhook web service: a Flask app that hands each delivery to :mod:`mergeway.intake`.

Run it under gunicorn with ``mergeway-web`` (:mod:`webhook_service.serve`, as in the ``Procfile``),
which is ``gunicorn -c python:webhook_service.gunicorn_conf 'webhook_service:create_app()'``.

The app refuses to start (``ConfigError``) when a secret for an enabled forge is missing, so a
misconfigured deployment fails at rollout instead of rejecting, or worse accepting, deliveries.
It also serves the read-only environments page (:mod:`webhook_service.page`, off unless the
operator opens it), the one HTML answer besides the JSON of every other route.
"""

from __future__ import annotations

import redis
from flask import Flask

from mergeway.config import Settings, scrub_secrets
from mergeway.intake.publish import Publisher
from mergeway.intake.service import Intake
from mergeway.logs import configure_logging
from webhook_service import page
from webhook_service.routes import register

__all__ = ["create_app"]


def create_app(
    settings: Settings | None = None,
    *,
    redis_client: redis.Redis | None = None,
    publisher: Publisher | None = None,
    configure_logs: bool = True,
) -> Flask:
    """Build the app. Tests pass ``settings`` (and may pass a client/publisher); production reads the env."""
    if settings is None:
        settings = Settings.from_env(role="web")
        scrub_secrets()  # nothing this process starts may inherit the webhook secrets
    settings.validate("web")
    if configure_logs:
        configure_logging(settings)
    client = redis_client if redis_client is not None else make_redis(settings.redis_url)
    app = Flask(__name__)
    # Werkzeug enforces this on every read of the body stream too (chunked uploads included).
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.config["MERGEWAY_SETTINGS"] = settings
    app.extensions["mergeway_intake"] = Intake(settings, client, publisher)
    page.register(app, settings)
    register(app)
    return app


def make_redis(url: str) -> redis.Redis:
    """A Redis client that fails fast: a delivery should get 503 in seconds, not hang until GitHub's 10 s."""
    return redis.Redis.from_url(
        url, socket_connect_timeout=1.0, socket_timeout=2.0, health_check_interval=30, retry_on_timeout=False
    )
