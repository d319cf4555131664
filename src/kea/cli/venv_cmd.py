"""``kea venv [PATH] [--python X] [--seed]``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

from kea.cli.options import global_options
from kea.cli.params import settings_from


@click.command(help="Create a virtual environment (default: .venv).")
@click.argument("path", required=False, default=".venv", type=click.Path())
@click.option("--python", "-p", "python", help="Interpreter: a path or a version (3.12).")
@click.option("--seed", is_flag=True, help="Install pip into the environment.")
@click.option("--prompt", help="The prompt shown when the environment is active.")
@click.option("--system-site-packages", is_flag=True, help="See the base's site-packages.")
@click.option("--clear", is_flag=True, help="Replace a virtual environment already at PATH.")
@global_options
def venv(**params: Any) -> None:
    from kea.cli.output import info
    from kea.install.environment import find_python
    from kea.install.target_cache import interpreter_cache_dir
    from kea.install.venv import create_venv

    settings = settings_from(params)
    cache = interpreter_cache_dir(settings)
    base = find_python(params["python"], env=settings.env or os.environ, cache_dir=cache)
    info(f"Using {base.display_name} interpreter at: {base.sys_executable or base.executable}")
    shown = params["path"]
    info(f"Creating virtual environment at: {shown}")
    create_venv(
        Path(shown),
        base,
        seed=params["seed"],
        prompt=params["prompt"],
        system_site_packages=params["system_site_packages"],
        cache_dir=cache,
        clear=params["clear"],
    )
    activate = "source " + os.path.join(shown, "bin", "activate")
    if os.name == "nt":
        activate = os.path.join(shown, "Scripts", "activate")
    info(f"Activate with: {activate}")
