"""The Kubernetes engine: one verb per module, as in Flux's ``ssa`` package.

``prepare`` turns a rendered object into the desired one (namespace, ownership labels, ignored
fields, hash) as the ``options`` (:class:`~mergeway.kube.options.ApplyOptions`) say.
``client`` talks HTTP to the API server, ``discovery`` maps kinds to resources, ``normalize`` and
``secrets`` prepare objects for display. ``changeset`` is what a plan is made of; ``diff`` dry-runs
(``patch`` is the one server-side apply request), ``prune`` chooses and deletes what left Git,
``apply`` applies stage by stage (``sort``), ``health`` waits for rollouts. ``applyset`` is the
inventory: a set known by its parent and its label, whose owner it verifies on every read. The
engine knows no repositories, environments, settings or renderers: the jobs give it a set
(:mod:`mergeway.jobs.applysets`) and plain objects (:class:`mergeway.manifest.Manifest`).
"""
