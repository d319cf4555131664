"""Records of the Simple API: one file of a project (``DistFile``) and one project page.

Records are msgspec Structs so that parsed pages are cheap to store in and load from the cache.
The wheel name/version/tags are parsed lazily (most files of a page are never looked at).
"""

from functools import cached_property
from typing import TYPE_CHECKING

import msgspec

from kea.dist.names import canonicalize_name

if TYPE_CHECKING:
    from packaging.utils import NormalizedName
    from packaging.version import Version

normalize_name = canonicalize_name  # PEP 503 normalized project name


class DistFile(msgspec.Struct, frozen=True, omit_defaults=True, dict=True):
    """One file link of a project page.

    ``yanked`` is False, True (yanked without a reason) or the reason string (PEP 592).
    ``core_metadata`` is False, True (a ``.metadata`` file exists, no hashes), or the hashes of the
    ``.metadata`` file (PEP 658/714). ``hashes`` maps algorithm -> lowercase hex digest.
    """

    filename: str
    url: str
    hashes: dict[str, str] = {}
    requires_python: str | None = None
    yanked: bool | str = False
    core_metadata: bool | dict[str, str] = False
    size: int | None = None
    upload_time: str | None = None

    @property
    def is_wheel(self) -> bool:
        return self.filename.endswith(".whl")

    @property
    def is_yanked(self) -> bool:
        return self.yanked is not False

    @property
    def yanked_reason(self) -> str | None:
        return self.yanked if isinstance(self.yanked, str) else None

    @property
    def has_metadata_file(self) -> bool:
        return self.core_metadata is not False

    @property
    def metadata_hashes(self) -> dict[str, str]:
        return self.core_metadata if isinstance(self.core_metadata, dict) else {}

    @property
    def metadata_url(self) -> str:
        """URL of the PEP 658 ``.metadata`` file (file URL without fragment + ``.metadata``)."""
        return self.url.split("#", 1)[0] + ".metadata"

    @cached_property
    def wheel_info(
        self,
    ) -> "tuple[NormalizedName, Version, frozenset[str]] | None":
        """(name, version, tags as text) of a wheel; None for non-wheels and unparsable wheel
        names (``kea.dist.wheel_name.wheel_parts``)."""
        if not self.is_wheel:
            return None
        from kea.dist.wheel_name import wheel_parts

        return wheel_parts(self.filename)

    @cached_property
    def sdist_info(self) -> "tuple[NormalizedName, Version] | None":
        """(name, version) of an sdist (``.tar.gz``/``.zip``); None otherwise."""
        if self.is_wheel:
            return None
        from packaging.utils import InvalidSdistFilename, parse_sdist_filename

        try:
            return parse_sdist_filename(self.filename)
        except (InvalidSdistFilename, ValueError):
            return None

    @property
    def version(self) -> "Version | None":
        info = self.wheel_info if self.is_wheel else self.sdist_info
        return info[1] if info else None


class ProjectPage(msgspec.Struct, frozen=True, omit_defaults=True):
    """A parsed project page: the files of one project on one index (or find-links source)."""

    name: str  # normalized project name
    url: str  # final URL the page came from (after redirects); may carry no secrets
    files: list[DistFile] = []
    versions: list[str] = []  # PEP 700 ``versions`` when the index provided it
    api_version: str | None = None  # ``meta.api-version`` (PEP 629/691)
    tracks: list[str] = []  # PEP 708
    alternate_locations: list[str] = []  # PEP 708


class ProjectList(msgspec.Struct, frozen=True):
    """The root ``/simple/`` page: project names."""

    url: str
    names: list[str] = []
