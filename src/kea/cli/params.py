"""From parsed options to what a command acts with: its Settings and its target environment.

click-free: ``kea pip install``'s own reader (``kea.cli.flags``) and click's commands both end here.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kea.settings import Settings, load_settings

if TYPE_CHECKING:
    from kea.install.environment import Target

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

TARGET_KEYS = ("python", "system", "target", "prefix", "break_system_packages")


def settings_from(
    params: dict[str, Any], *, cwd: Path | None = None, defer_logging: bool = False
) -> Settings:
    """Pop the shared options out of a command's params and build Settings (logging set up;
    ``defer_logging``: see ``setup_logging``)."""
    from kea.cli.output import set_color, setup_logging

    cli = {k: params.pop(k) for k in SETTINGS_KEYS if k in params}
    settings = load_settings(cli=cli, cwd=cwd)
    setup_logging(settings.verbosity, settings.quiet, defer=defer_logging)
    set_color(settings.color)
    return settings


def target_from(params: dict[str, Any], settings: Settings, *, changes: bool = False) -> Target:
    """Pop the target options out of ``params`` and find the environment; ``changes``: the
    command changes it (an externally managed one is refused without the flag saying so)."""
    from kea.install.environment import check_externally_managed, resolve_target
    from kea.install.target_cache import interpreter_cache_dir

    values = {k: params.pop(k, None) for k in TARGET_KEYS}
    target = resolve_target(
        python=values["python"],
        system=bool(values["system"]),
        target=values["target"],
        prefix=values["prefix"],
        env=settings.env or os.environ,
        cache_dir=interpreter_cache_dir(settings),
        mutable=changes,
    )
    if changes and not values["break_system_packages"]:
        check_externally_managed(target)
    return target
