"""``kea serve``: run the routing private index described by a ``kea-serve.toml``."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import click

from kea.errors import UsageError


@click.command(help="Serve a routing private index (local folders, proxy and redirect routes).")
@click.option(
    "--config",
    "config_path",
    default="kea-serve.toml",
    show_default=True,
    type=click.Path(dir_okay=False),
    help="The kea-serve.toml to read.",
)
@click.option("--host", default=None, help="Address to listen on [default: 127.0.0.1].")
@click.option("--port", type=click.IntRange(0, 65535), default=None, help="Port [default: 8085].")
@click.option("--workers", type=click.IntRange(1, 64), default=None, help="Worker processes.")
@click.option("--cache-dir", type=click.Path(file_okay=False), default=None, help="Cache folder.")
@click.option("--check", is_flag=True, help="Validate the config and exit.")
@click.option("-v", "--verbose", "verbosity", count=True, help="More output.")
@click.option("-q", "--quiet", count=True, help="Less output (no access log).")
def serve(**params: Any) -> None:
    from kea.cli.output import info, setup_logging
    from kea.serve.config import load_config

    setup_logging(params["verbosity"], params["quiet"])
    config = load_config(Path(params["config_path"]))
    changes: dict[str, Any] = {}
    for key in ("host", "port", "workers"):
        if params[key] is not None:
            changes[key] = params[key]
    if params["cache_dir"]:
        changes["cache_dir"] = Path(params["cache_dir"])
    if params["quiet"]:
        changes["access_log"] = False
    config = dataclasses.replace(config, **changes)
    if params["check"]:
        from kea.serve.store import CACHE_DIR_HINT, cache_dir_problem

        problem = cache_dir_problem(config.cache_dir)
        if problem is not None:
            raise UsageError(problem, hint=CACHE_DIR_HINT)
        if config.htpasswd is not None:
            from kea.serve.clientauth import load_htpasswd

            _, problems = load_htpasswd(config.htpasswd)
            if problems:
                more = f" ({len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
                raise UsageError(
                    problems[0] + more,
                    hint="kea serve skips such lines and refuses such entries",
                )
        info(f"{config.path}: ok ({len(config.routes)} routes, {len(config.upstreams)} upstreams)")
        return
    from kea.serve.server import run

    run(config, verbosity=params["verbosity"], quiet=params["quiet"])
