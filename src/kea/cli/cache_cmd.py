"""``kea cache dir|clean [PACKAGE...]|prune``."""

from __future__ import annotations

from typing import Any

import click

from kea.cli.options import global_options
from kea.cli.params import settings_from


@click.group(help="Inspect and clean kea's cache.")
def cache() -> None:
    pass


def _cache_from(params: dict[str, Any]) -> Any:
    from kea.cache import Cache

    settings = settings_from(params)
    return Cache.from_settings(settings)


@cache.command("dir", help="Print the cache directory.")
@global_options
def dir_(**params: Any) -> None:
    c = _cache_from(params)
    click.echo(str(c.root))


@cache.command(help="Remove the cache, or only the entries of the given packages.")
@click.argument("packages", nargs=-1)
@global_options
def clean(packages: tuple[str, ...], **params: Any) -> None:
    from kea.cache.maintenance import Removal, clean_all, clean_packages
    from kea.cli.output import info

    c = _cache_from(params)
    if not c.root.exists():
        info(f"No cache found at: {c.root}")
        return
    if not packages:
        info(f"Clearing cache at: {c.root}")
        info(clean_all(c).summary())
        return
    total = Removal()
    for name, removal in clean_packages(c, list(packages)).items():
        if removal.files or removal.dirs:
            info(f"{removal.summary()} for {name}")
        else:
            info(f"No cache entries found for {name}")
        total.add(removal)
    if len(packages) > 1 and (total.files or total.dirs):
        info(f"{total.summary()} in total")


@cache.command(help="Remove unused entries (old bucket versions, stale temp files, orphans).")
@global_options
def prune(**params: Any) -> None:
    from kea.cache.maintenance import prune as do_prune
    from kea.cli.output import info

    c = _cache_from(params)
    if not c.root.exists():
        info(f"No cache found at: {c.root}")
        return
    info(f"Pruning cache at: {c.root}")
    removal = do_prune(c)
    if removal.files or removal.dirs:
        info(removal.summary())
    else:
        info("No unused entries found")
