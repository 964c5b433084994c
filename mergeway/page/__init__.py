"""The environments page: what runs where, read from the deployment records.

:mod:`~mergeway.page.model` turns records (and drift results) into rows, :mod:`~mergeway.page.html`
renders them for a browser, :mod:`~mergeway.page.text` for ``mergeway status``, and
:mod:`~mergeway.page.access` decides who may read them. The package reads Redis only: the web
process that serves it holds no cluster or forge credentials and imports no engine, renderer or job
(the layer contract in pyproject.toml).
"""
