"""``kea pip ...``: uv's pip interface. Each subcommand lives in its own module, loaded lazily."""

from __future__ import annotations

import importlib

import click

_COMMANDS: dict[str, tuple[str, str]] = {
    "install": ("kea.cli.pip_install", "install"),
    "uninstall": ("kea.cli.pip_inspect", "uninstall"),
    "list": ("kea.cli.pip_inspect", "list_"),
    "freeze": ("kea.cli.pip_inspect", "freeze"),
    "show": ("kea.cli.pip_inspect", "show"),
    "check": ("kea.cli.pip_inspect", "check"),
}


class _PipGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(_COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = _COMMANDS.get(cmd_name)
        if target is None:
            return None
        try:
            module = importlib.import_module(target[0])
        except ModuleNotFoundError as e:
            if e.name == target[0]:
                return None
            raise
        command: click.Command = getattr(module, target[1])
        return command


@click.group(cls=_PipGroup, help="Manage packages in an environment (uv's pip interface).")
def pip() -> None:
    pass
