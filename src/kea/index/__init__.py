"""Package indexes: Simple API pages (PEP 503 HTML, PEP 691 JSON), find-links, and the client.

Submodules: ``models`` (records), ``html`` / ``simple_json`` / ``page`` (parsers), ``findlinks``
(local directories and ``file://`` indexes), ``wheelmeta`` (METADATA from wheels, range reads),
``client`` (``IndexClient``: pages and metadata across indexes, through the cache).
"""
