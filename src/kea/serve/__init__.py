"""``kea serve``: a routing private index (local directories, proxy and redirect upstreams).

Modules: ``config`` (kea-serve.toml), ``names`` (project names and route patterns), ``routes``
(first-match routing with private names), ``negotiate`` (Accept), ``render`` (PEP 503/691 pages),
``local`` (directory routes), ``store`` (content-addressed file cache), ``proxy`` (upstream pages
and files), ``clientauth`` (htpasswd and tokens), ``upload`` (legacy upload API), ``metrics``,
``app`` (the aiohttp application) and ``server`` (sockets, workers, shutdown).
"""
