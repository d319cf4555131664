"""click options built from the declarations in ``kea.cli.flags``, grouped as the commands share
them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click

from kea.cli import flags

F = TypeVar("F", bound=Callable[..., Any])


def click_options(opts: Sequence[flags.Opt]) -> Callable[[F], F]:
    """A decorator adding ``opts`` to a click command, in their order."""

    def decorate(f: F) -> F:
        for o in reversed(opts):
            f = _click_option(o)(f)
        return f

    return decorate


def _click_option(o: flags.Opt) -> Callable[[F], F]:
    kwargs: dict[str, Any] = {"help": o.help, "metavar": o.metavar}
    decls = [*o.names, o.dest]
    if o.kind == flags.FLAG:
        kwargs.update(is_flag=True, default=o.default)
        if o.off:
            decls = [f"{o.names[0]}/{o.off[0]}", o.dest]
            kwargs.pop("is_flag")
    elif o.kind == flags.COUNT:
        kwargs["count"] = True
    elif o.kind == flags.MULTIPLE:
        kwargs["multiple"] = True
    if o.choices is not None:
        kwargs["type"] = click.Choice(list(o.choices))
    elif o.path == "file":
        kwargs["type"] = click.Path(dir_okay=False)
    elif o.path == "dir":
        kwargs["type"] = click.Path(file_okay=False)
    return click.option(*decls, **kwargs)


global_options = click_options(flags.GLOBAL)  # -v/-q, config and cache: every command
index_options = click_options(flags.INDEX)  # index selection and credential policy (uv's names)
refresh_options = click_options(flags.REFRESH)  # --refresh / --refresh-package (uv's)
target_options = click_options(flags.TARGET)  # --python/--system/--target/--prefix
