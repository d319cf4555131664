"""What kea serve keeps of an upstream's answer to revalidate it: its validators (``ETag``,
``Last-Modified``) and freshness (``Validated``), and for a project page its files
(``PageEntry``). Saved as JSON beside the content-addressed files (``kea.serve.store``);
``kea.serve.proxy`` fetches and revalidates them, ``kea.serve.lists`` keeps the project list so.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Self

from kea.index.cache_control import cache_control
from kea.index.models import DistFile
from kea.serve.store import keep_json, read_json

if TYPE_CHECKING:
    from pathlib import Path


@dataclass(kw_only=True)
class Validated:
    """What a cached upstream answer keeps to be revalidated: its validators and freshness."""

    etag: str | None = None
    last_modified: str | None = None
    fetched: float = 0.0
    max_age: int = 0
    stale: bool = False
    persist: bool = True

    def fresh(self, now: float) -> bool:
        return now - self.fetched < self.max_age

    def to_json(self) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def from_json(cls, obj: Any) -> Self | None:
        raise NotImplementedError

    @classmethod
    async def load(cls, path: Path) -> Self | None:
        """The entry saved at ``path``; None when there is none, or it cannot be read."""
        raw = await asyncio.to_thread(read_json, path)
        return cls.from_json(raw) if raw is not None else None

    async def save(self, path: Path) -> None:
        """Write the entry to ``path`` unless its upstream said not to keep it (no-store)."""
        if self.persist:
            await asyncio.to_thread(keep_json, path, self.to_json())

    def validators_json(self) -> dict[str, Any]:
        return {
            "etag": self.etag,
            "last_modified": self.last_modified,
            "fetched": self.fetched,
            "max_age": self.max_age,
        }

    @staticmethod
    def validators_from(obj: Any) -> dict[str, Any]:
        """``validators_json``'s fields back, as keyword arguments (TypeError/ValueError when
        they are not of their types)."""
        return {
            "etag": obj.get("etag"),
            "last_modified": obj.get("last_modified"),
            "fetched": float(obj.get("fetched") or 0),
            "max_age": int(obj.get("max_age") or 0),
        }


@dataclass(kw_only=True)
class PageEntry(Validated):
    files: list[DistFile]
    versions: list[str]
    by_name: dict[str, DistFile] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.by_name = {f.filename: f for f in self.files}

    def to_json(self) -> dict[str, Any]:
        import msgspec

        return {
            "files": msgspec.to_builtins(self.files),
            "versions": self.versions,
            **self.validators_json(),
        }

    @classmethod
    def from_json(cls, obj: Any) -> Self | None:
        import msgspec

        try:
            files = msgspec.convert(obj["files"], list[DistFile])
            return cls(
                files=files,
                versions=list(obj.get("versions") or []),
                **cls.validators_from(obj),
            )
        except (KeyError, TypeError, ValueError, AttributeError, msgspec.ValidationError):
            return None


def freshness(value: str | None, default: int) -> tuple[int, bool]:
    """(seconds fresh, may be kept on disk) from an upstream's ``Cache-Control``, as a shared
    cache reads it: ``s-maxage`` before ``max-age``; ``default`` seconds when it says nothing
    about freshness."""
    said = cache_control(value)
    if said.no_store:
        return 0, False
    if said.no_cache:
        return 0, True
    age = said.max_age if said.s_maxage is None else said.s_maxage
    return (default if age is None else age), True
