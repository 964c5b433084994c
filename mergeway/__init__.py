"""Mergeway: push-based GitOps for Kubernetes, driven by pull requests.

This package is the domain: plain Python that the web edge (``webhook_service``) and the worker
edge (``workers``) both call, and that tests call directly without Flask or Celery.
"""

__version__ = "0.1.0"
