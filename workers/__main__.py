"""``python -m workers [celery worker options]``: validate settings, then run a Celery worker.

Validation happens before Celery starts so a worker without forge credentials, or without a valid
policy, refuses to start with a one-line reason (exit 2) before it takes a job, instead of failing
every job later. The policy is read here, once: the job processes Celery forks use this copy
(:meth:`mergeway.config.Settings.load_policy`). By default the worker consumes every job queue;
pass ``--queues preview`` (etc.) to dedicate a worker to one kind.

Prometheus: prefork children record job metrics in ``PROMETHEUS_MULTIPROC_DIR`` (a fresh temporary
directory when unset); with ``MERGEWAY_WORKER_METRICS_PORT`` set, the main process serves their sum
on that port.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    own_metrics_dir = not os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if own_metrics_dir:
        # Must be set before prometheus_client is imported anywhere.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="mergeway-worker-metrics-")

    # After PROMETHEUS_MULTIPROC_DIR is set (prometheus_client reads it once, at its first import,
    # and the settings' imports may reach it), and before Celery: a bad setting is a one-line refusal.
    from mergeway.config import ConfigError, Settings, scrub_secrets

    try:
        settings = Settings.from_env(role="worker")
    except ConfigError as exc:
        print(f"mergeway-worker refuses to start: {exc}", file=sys.stderr)
        return 2
    scrub_secrets()  # jobs run renderers on repository content: no child may inherit a token

    # Celery and the app only once the settings are valid and secrets are scrubbed: the app reads
    # the settings when it is created.
    from celery import signals

    from mergeway.jobs.kinds import QUEUES
    from mergeway.logs import configure_logging
    from workers.celery_app import app

    def _logging(**_: object) -> None:
        configure_logging(settings)

    def _metrics_server(**_: object) -> None:
        if settings.worker_metrics_port:
            # Only when the port is set, and after the multiprocess directory above.
            from prometheus_client import start_http_server

            from mergeway.metrics import registry

            start_http_server(settings.worker_metrics_port, registry=registry())

    def _child_exit(pid: int | None = None, **_: object) -> None:
        # Late, like every prometheus_client import in this process (the multiprocess directory).
        from mergeway.metrics import mark_process_dead

        mark_process_dead(pid or os.getpid())

    # Strong references: these are local functions, and Celery signals hold weak ones by default.
    signals.setup_logging.connect(_logging, weak=False)
    signals.worker_init.connect(_metrics_server, weak=False)
    signals.worker_process_shutdown.connect(_child_exit, weak=False)

    # --quiet: no ASCII banner on stdout; the log (JSON) says what the worker does.
    args = ["--quiet", "worker", "--loglevel", settings.log_level]
    if not any(a in ("-Q", "--queues") or a.startswith("--queues=") for a in argv):
        args += ["--queues", ",".join(QUEUES.values())]
    try:
        app.worker_main([*args, *argv])
    finally:
        if own_metrics_dir:
            shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
