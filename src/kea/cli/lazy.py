"""A click group whose subcommands are imported only when they are used."""

from __future__ import annotations

import importlib
import importlib.util

import click


class LazyGroup(click.Group):
    """Subcommands given as ``name -> (module, attribute)``; a missing module hides the name."""

    def __init__(self, *args: object, lazy: dict[str, tuple[str, str]], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.lazy = lazy

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(name for name, (mod, _) in self.lazy.items() if importlib.util.find_spec(mod))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = self.lazy.get(cmd_name)
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
