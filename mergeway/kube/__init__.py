"""The Kubernetes engine: one concern per module, as in Flux's ``ssa`` package.

``client`` talks HTTP to the API server, ``discovery`` maps kinds to resources, ``normalize`` and
``secrets`` prepare objects for display, ``diff`` runs server-side dry runs, ``sort`` orders apply
stages, ``apply`` applies, ``applyset`` tracks what Mergeway owns for pruning, ``health`` waits for
rollouts.
"""
