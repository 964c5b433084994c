"""The baseline for bench/intake.py: the least a Flask endpoint can do with a webhook-sized POST.

It reads the body and answers a small JSON object, under the same gunicorn settings as the real
service, so the ratio printed by the benchmark is the cost of Mergeway's own work (verify, parse,
dedupe, enqueue, log, count) relative to Flask + gunicorn alone.
"""

from __future__ import annotations

from flask import Flask, jsonify, request
from flask.typing import ResponseReturnValue


def create_app() -> Flask:
    app = Flask(__name__)

    @app.post("/webhooks/<forge>")
    def receive(forge: str) -> ResponseReturnValue:
        body = request.get_data()
        return jsonify(status="ok", forge=forge, size=len(body)), 202

    @app.get("/healthz")
    def healthz() -> ResponseReturnValue:
        return jsonify(status="ok")

    return app
