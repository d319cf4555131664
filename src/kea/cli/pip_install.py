"""``kea pip install``: requirements → resolve → prepare (download/unpack, concurrently) → install.

Output is uv's, on stderr: ``Resolved N packages in 1.21s``, ``Prepared N packages in 3.02s``,
``Installed N packages in 412ms``, `` + name==version`` / `` - name==version`` lines, ``Would
install ...`` with ``--dry-run``, ``Audited N packages in ...`` when nothing is to be done. When
every requirement is already satisfied by the environment (and nothing asks for an upgrade or a
reinstall) the command answers from the installed metadata without touching the network.

Heavy modules (aiohttp, the resolver, the installer) are imported inside the functions that use
them, so ``kea pip install --help`` and a no-op install start fast.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from kea.cli.options import global_options, index_options, refresh_options
from kea.cli.shortopts import ShortFirstCommand
from kea.cli.target_options import target_options

PRERELEASE = ("disallow", "allow", "if-necessary", "explicit", "if-necessary-or-explicit")
RESOLUTION = ("highest", "lowest", "lowest-direct")
LINK_MODES = ("clone", "hardlink", "copy", "symlink")


@click.command(
    cls=ShortFirstCommand,
    help="Install packages into an environment.",
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.argument("packages", nargs=-1)
@click.option(
    "-r", "--requirements", "--requirement", "requirements", multiple=True,
    type=click.Path(dir_okay=False), help="Install from this requirements file.",
)  # fmt: skip
@click.option(
    "-c", "--constraints", "--constraint", "constraints", multiple=True,
    type=click.Path(dir_okay=False), help="Constrain versions with this file.",
)  # fmt: skip
@click.option(
    "--overrides", "--override", "overrides", multiple=True, type=click.Path(dir_okay=False),
    help="Override versions with this file (replaces every requirement on those packages).",
)  # fmt: skip
@click.option("-e", "--editable", "editables", multiple=True, help="Install a project editable.")
@click.option("--require-hashes", is_flag=True, help="Every requirement must carry --hash.")
@click.option("--dry-run", is_flag=True, help="Resolve and report, change nothing.")
@click.option("--no-deps", is_flag=True, help="Install only what is named, not dependencies.")
@click.option("--reinstall", "--force-reinstall", "reinstall", is_flag=True, help="Reinstall all.")
@click.option("--reinstall-package", multiple=True, help="Reinstall this package.")
@click.option("-U", "--upgrade", is_flag=True, help="Allow upgrades of installed packages.")
@click.option("-P", "--upgrade-package", multiple=True, help="Allow upgrades of this package.")
@click.option("--only-binary", multiple=True, help="Only wheels for these packages (:all:).")
@click.option("--no-binary", multiple=True, help="No wheels for these packages (:all:).")
@click.option("--prerelease", type=click.Choice(PRERELEASE), default=None)
@click.option("--pre", is_flag=True, help="Alias of --prerelease allow.")
@click.option("--resolution", type=click.Choice(RESOLUTION), default=None)
@click.option("--exclude-newer", help="Ignore files uploaded after this date/time.")
@click.option("--link-mode", type=click.Choice(LINK_MODES), default=None)
@click.option(
    "--compile-bytecode", "--compile", "compile_bytecode", is_flag=True, default=None,
    help="Compile .py files to .pyc after installing.",
)  # fmt: skip
@target_options
@index_options
@refresh_options
@global_options
def install(**params: Any) -> None:
    run_install(params)


def run_install(params: dict[str, Any]) -> None:
    """The whole of ``kea pip install`` after click parsed the options."""
    from kea.cli.fastpath_stamp import Recorder
    from kea.cli.install_output import elapsed, packages, say
    from kea.cli.install_request import (
        InstallOptions,
        audit_installed,
        gather_request,
        merge_file_indexes,
    )
    from kea.cli.options import settings_from
    from kea.cli.target_options import target_from
    from kea.dist.installed import find_installed

    started = time.perf_counter()
    recorder = Recorder.start(params)  # None unless this run may write a no-op stamp
    try:
        _load_memo(params)
        request = gather_request(params)
        merge_file_indexes(params, request.files)
        settings = settings_from(params)
        options = InstallOptions.from_params(params, settings)
        if not settings.offline:
            from kea.install import environment

            environment.while_probing = _imports_for_the_network
        target = target_from(params, settings)
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
        from kea.http.client import import_aiohttp

        import_aiohttp()
