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

from typing import Any

import click

from kea.cli import flags
from kea.cli.install_run import run_install
from kea.cli.options import (
    click_options,
    global_options,
    index_options,
    refresh_options,
    target_options,
)
from kea.cli.shortopts import ShortFirstCommand


@click.command(
    cls=ShortFirstCommand,
    help="Install packages into an environment.",
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.argument(flags.INSTALL_ARGUMENT, nargs=-1)
@click_options(flags.INSTALL)
@target_options
@index_options
@refresh_options
@global_options
def install(**params: Any) -> None:
    run_install(params)
