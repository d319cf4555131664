"""The whole of ``kea pip install`` once its options are read (by click, or by
``kea.cli.flags.read``): requirements, target, the no-op audit, then the pipeline."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def run_install(params: dict[str, Any]) -> None:
    """The whole of ``kea pip install`` after its options were read."""
    from kea.cli.fastpath_stamp import Recorder
    from kea.cli.install_output import elapsed, packages, say
    from kea.cli.install_request import (
        InstallOptions,
        audit_installed,
        gather_request,
        merge_file_indexes,
    )
    from kea.cli.params import settings_from, target_from
    from kea.dist.installed import find_installed

    started = time.perf_counter()
    recorder = Recorder.start(params)  # None unless this run may write a no-op stamp
    try:
        _load_memo(params)
        request = gather_request(params)
        merge_file_indexes(params, request.files)
        settings = settings_from(params, defer_logging=True)  # kea.log.ensure() before asyncio
        options = InstallOptions.from_params(params, settings)
        if not settings.offline:
            from kea.install import environment

            environment.while_probing = _imports_for_the_network
        target = target_from(params, settings, changes=True)
        if recorder is not None:
            recorder.watch_target(target)  # before anything installed is read
        installed = find_installed(target.roots())
        audited = audit_installed(request, installed, target.interpreter.markers)
        if audited is not None:
            head, took = f"Audited {packages(audited)} in ", elapsed(time.perf_counter() - started)
            say(head + took)
            if recorder is not None:
                recorder.finish(request, settings, head, took)
            return
    finally:
        if recorder is not None:
            recorder.stop()
    from kea.cli.install_pipeline import resolve_and_install  # not needed by a no-op

    resolve_and_install(request, options, settings, target, installed, started)


def _load_memo(params: dict[str, Any]) -> None:
    """Load the memo of parsed requirements (``kea.dist.parsed``) before the requirement files
    are read: without it, jupyter's pinned file alone made packaging's parsers load. The cache's
    place comes from ``--cache-dir``, ``KEA_CACHE_DIR`` or the default here; one set in a
    config file is known only later, and ``resolve_and_install`` moves the memo there."""
    if params.get("no_cache"):
        return
    from kea.dist import parsed

    where = params.get("cache_dir") or os.environ.get("KEA_CACHE_DIR")
    if where:
        parsed.load(Path(where).expanduser())
    else:
        from kea.cache.store import default_cache_dir

        parsed.load(default_cache_dir())


def _imports_for_the_network(still_probing: Callable[[], bool]) -> None:
    """While kea waits for the probe of the target interpreter, import what a run that goes to
    the network imports next, in that order, until the probe answers.

    A probe runs when kea has not seen the interpreter with this cache before: a first run,
    most likely on an empty cache, where the network is needed. Cold jupyter install: kea's
    thread waited ~20 ms for the probe, doing nothing, right before importing asyncio and then
    aiohttp (~75 ms). A run that turns out to need no network loses at most the import under
    way when the probe answers."""
    import importlib

    for name in ("asyncio", "kea.resolver.provider", "kea.index.client", "kea.http.client"):
        if not still_probing():
            return
        importlib.import_module(name)
    if still_probing():
        from kea.http.aio import import_aiohttp

        import_aiohttp()
