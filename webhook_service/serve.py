"""``mergeway-web [gunicorn options]``: the webhook service under gunicorn, as deployed.

The console script exists so an installed package (``pip install``, the container image) runs the
web edge without a checkout: gunicorn's settings are loaded from the installed
``webhook_service.gunicorn_conf`` module rather than a file path relative to the working directory.
Extra arguments go to gunicorn (e.g. ``--bind 127.0.0.1:9000``).
"""

from __future__ import annotations

import sys

from gunicorn.app.wsgiapp import WSGIApplication  # type: ignore[import-untyped]

#: Gunicorn's settings module and the app factory, as installed.
CONFIG = "python:webhook_service.gunicorn_conf"
APP = "webhook_service:create_app()"


def main(argv: list[str] | None = None) -> int:
    """Run gunicorn in this process (it becomes the arbiter; no extra wrapper process stays around)."""
    args = list(sys.argv[1:] if argv is None else argv)
    sys.argv = ["mergeway-web", "-c", CONFIG, *args, APP]
    WSGIApplication("%(prog)s [OPTIONS]", prog="mergeway-web").run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
