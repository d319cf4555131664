"""Options shared by many commands, and the bridge from parsed options to Settings."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from kea.settings import KEYRING_VALUES, STRATEGY_VALUES, Settings, load_settings

F = TypeVar("F", bound=Callable[..., Any])

SETTINGS_KEYS = (
    "index",
    "default_index",
    "index_url",
    "extra_index_url",
    "find_links",
    "no_index",
    "keyring_provider",
    "index_strategy",
    "allow_insecure_host",
    "cache_dir",
    "no_cache",
    "offline",
    "no_config",
    "config_file",
    "verbosity",
    "quiet",
    "color",
    "no_progress",
    "refresh",
    "refresh_package",
)


def global_options(f: F) -> F:
    """-v/-q, config and cache options every command takes."""
    decorators = [
        click.option("-v", "--verbose", "verbosity", count=True, help="More output (-vvv: trace)."),
        click.option("-q", "--quiet", count=True, help="Less output."),
        click.option("--no-config", is_flag=True, help="Ignore kea.toml / pyproject files."),
        click.option(
            "--config-file", type=click.Path(dir_okay=False), help="Use this config file only."
        ),
        click.option("--cache-dir", type=click.Path(file_okay=False), help="Cache directory."),
        click.option("--no-cache", "-n", is_flag=True, help="Use a temporary cache."),
        click.option("--offline", is_flag=True, help="Never touch the network."),
        click.option(
            "--color", type=click.Choice(["auto", "always", "never"]), default=None, help="Color."
        ),
        click.option("--no-progress", is_flag=True, help="No progress bars."),
    ]
    for d in reversed(decorators):
        f = d(f)
    return f


def index_options(f: F) -> F:
    """Index selection and credential policy options (uv's names)."""
    decorators = [
        click.option("--index", multiple=True, help="An index, as URL or NAME=URL (repeatable)."),
        click.option("--default-index", help="The default index (replaces PyPI)."),
        click.option("--index-url", "-i", help="Alias of --default-index (pip's name)."),
        click.option("--extra-index-url", multiple=True, help="An extra index (repeatable)."),
        click.option("--find-links", "-f", multiple=True, help="A directory or page of links."),
        click.option("--no-index", is_flag=True, help="Use no index (only --find-links)."),
        click.option("--index-strategy", type=click.Choice(STRATEGY_VALUES), default=None),
        click.option("--keyring-provider", type=click.Choice(KEYRING_VALUES), default=None),
        click.option("--allow-insecure-host", multiple=True, help="Skip TLS checks for a host."),
    ]
    for d in reversed(decorators):
        f = d(f)
    return f


def refresh_options(f: F) -> F:
    """``--refresh`` / ``--refresh-package`` (uv's): revalidate cached index pages this run."""
    decorators = [
        click.option(
            "--refresh/--no-refresh", default=None,
            help="Revalidate every cached index page with the index (ETag / Last-Modified) "
            "instead of trusting its max-age. An error with --offline (they contradict); "
            "KEA_REFRESH or a config file's refresh = true is ignored when offline.",
        ),
        click.option(
            "--refresh-package", multiple=True, metavar="NAME",
            help="Like --refresh, for this project's pages only (repeatable; ignored offline).",
        ),
    ]  # fmt: skip
    for d in reversed(decorators):
        f = d(f)
    return f


def settings_from(params: dict[str, Any], *, cwd: Path | None = None) -> Settings:
    """Pop the shared options out of a command's params and build Settings (logging set up)."""
    from kea.cli.output import set_color, setup_logging

    cli = {k: params.pop(k) for k in SETTINGS_KEYS if k in params}
    settings = load_settings(cli=cli, cwd=cwd)
    setup_logging(settings.verbosity, settings.quiet)
    set_color(settings.color)
    return settings
