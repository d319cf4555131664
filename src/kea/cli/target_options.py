"""``--python/--system/--target/--prefix``: which environment a ``kea pip`` command acts on."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from kea.install.environment import Target
    from kea.settings import Settings

F = TypeVar("F", bound=Callable[..., Any])

TARGET_KEYS = ("python", "system", "target", "prefix")


def target_options(f: F) -> F:
    decorators = [
        click.option(
            "--python", "-p", "python", help="The interpreter (path or version) to act on."
        ),
        click.option("--system", is_flag=True, help="Allow a non-virtual (system) interpreter."),
        click.option(
            "--target", type=click.Path(file_okay=False), help="Install into this directory."
        ),
        click.option("--prefix", type=click.Path(file_okay=False), help="Install under DIR."),
    ]
    for d in reversed(decorators):
        f = d(f)
    return f


def target_from(params: dict[str, Any], settings: Settings) -> Target:
    """Pop the target options out of ``params`` and find the environment."""
    from kea.install.environment import resolve_target
    from kea.install.target_cache import interpreter_cache_dir

    values = {k: params.pop(k, None) for k in TARGET_KEYS}
    return resolve_target(
        python=values["python"],
        system=bool(values["system"]),
        target=values["target"],
        prefix=values["prefix"],
        env=settings.env or os.environ,
        cache_dir=interpreter_cache_dir(settings),
    )
