"""Mergeway: push-based GitOps for Kubernetes, driven by pull requests.

This package is the domain: plain Python that the web edge (``webhook_service``) and the worker
edge (``workers``) both call, and that tests call directly without Flask or Celery.
"""

#: The release, in one place: packaging (pyproject.toml), ``mergeway --version``, ``/healthz``, the
#: image label and the chart's appVersion all follow it.
__version__ = "0.2.0"
