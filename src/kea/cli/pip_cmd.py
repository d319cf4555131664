"""``kea pip ...``: uv's pip interface. Each subcommand lives in its own module, loaded lazily."""

from __future__ import annotations

import click

from kea.cli.lazy import LazyGroup

_COMMANDS: dict[str, tuple[str, str]] = {
    "install": ("kea.cli.pip_install", "install"),
    "uninstall": ("kea.cli.pip_inspect", "uninstall"),
    "list": ("kea.cli.pip_inspect", "list_"),
    "freeze": ("kea.cli.pip_inspect", "freeze"),
    "show": ("kea.cli.pip_inspect", "show"),
    "check": ("kea.cli.pip_inspect", "check"),
}


@click.group(
    cls=LazyGroup, lazy=_COMMANDS, help="Manage packages in an environment (uv's pip interface)."
)
def pip() -> None:
    pass
