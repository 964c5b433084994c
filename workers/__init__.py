"""Celery workers: the preview, deploy, rollback and help jobs.

Start with ``python -m workers`` (validates settings, then runs ``celery worker`` on every job
queue); ``celery -A workers.celery_app worker`` also works for development. The Celery app lives in
:mod:`workers.celery_app`, the tasks in :mod:`workers.tasks`.
"""
