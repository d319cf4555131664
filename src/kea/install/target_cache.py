"""Where interpreter facts are cached for a run's Settings."""

from __future__ import annotations

from pathlib import Path

from kea.install.environment import CACHE_BUCKET, default_cache_dir
from kea.settings import Settings


def interpreter_cache_dir(settings: Settings) -> Path:
    """``<cache>/interpreters-v1``: the run's cache dir when set, else the user cache.

    With ``--no-cache`` the user cache is still used for interpreter facts: they are keyed by
    the interpreter file's identity, so they cannot go stale.
    """
    if settings.cache_dir is not None:
        return settings.cache_dir / CACHE_BUCKET
    return default_cache_dir()
