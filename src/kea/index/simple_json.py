"""PEP 691 JSON project pages (``application/vnd.pypi.simple.v1+json``), with PEP 700 fields.

Decoding goes through msgspec Structs, so a page with a missing key or a wrong type becomes a
one-line ``KeaError`` naming the (redacted) URL and the JSON path of the problem.
"""

from __future__ import annotations

from typing import TypeVar
from urllib.parse import urljoin

import msgspec

from kea.auth.redact import redact_url
from kea.errors import KeaError
from kea.index.html import _split_hash_fragment
from kea.index.models import DistFile, ProjectList, ProjectPage, normalize_name


class _Meta(msgspec.Struct):
    api_version: str = msgspec.field(name="api-version")
    tracks: list[str] = []
    alternate_locations: list[str] = msgspec.field(default_factory=list, name="alternate-locations")


class _File(msgspec.Struct):
    filename: str
    url: str
    hashes: dict[str, str]
    requires_python: str | None = msgspec.field(default=None, name="requires-python")
    core_metadata: bool | dict[str, str] | None = msgspec.field(default=None, name="core-metadata")
    dist_info_metadata: bool | dict[str, str] | None = msgspec.field(
        default=None, name="dist-info-metadata"
    )
    data_dist_info_metadata: bool | dict[str, str] | None = msgspec.field(
        default=None, name="data-dist-info-metadata"
    )
    yanked: bool | str = False
    size: int | None = None
    upload_time: str | None = msgspec.field(default=None, name="upload-time")


class _Project(msgspec.Struct):
    meta: _Meta
    name: str
    files: list[_File]
    versions: list[str] = []


class _RootProject(msgspec.Struct):
    name: str


class _Root(msgspec.Struct):
    meta: _Meta
    projects: list[_RootProject]


_project_decoder = msgspec.json.Decoder(_Project)
_root_decoder = msgspec.json.Decoder(_Root)

_T = TypeVar("_T")


def _bad(url: str, why: str) -> KeaError:
    return KeaError(
        f"invalid JSON index page {redact_url(url)}: {why}",
        hint="the server answered with a PEP 691 content type but not a valid project page",
    )


def _check_version(url: str, version: str) -> None:
    major = version.split(".", 1)[0].strip()
    if major != "1":
        raise KeaError(
            f"{redact_url(url)} speaks Simple API version {version}; kea understands 1.x",
            hint="upgrade kea, or ask the index to serve HTML",
        )


def _hashes(raw: dict[str, str]) -> dict[str, str]:
    return {k.lower(): v.lower() for k, v in raw.items() if isinstance(v, str)}


def _metadata(value: bool | dict[str, str] | None) -> bool | dict[str, str]:
    if value is None or value is False:
        return False
    if value is True:
        return True
    hashes = _hashes(value)
    return hashes or True


def _decode(decoder: msgspec.json.Decoder[_T], body: bytes, url: str) -> _T:
    """Decode a JSON page; malformed or mistyped JSON is a ``KeaError`` naming ``url``."""
    try:
        return decoder.decode(body)
    except msgspec.ValidationError as e:
        raise _bad(url, str(e)) from None
    except msgspec.DecodeError as e:
        raise _bad(url, f"not JSON ({e})") from None


def parse_project_json(body: bytes, url: str, *, name: str | None = None) -> ProjectPage:
    """Parse a PEP 691 project page fetched from ``url`` (the final URL of the redirect chain)."""
    raw = _decode(_project_decoder, body, url)
    _check_version(url, raw.meta.api_version)
    files = []
    for f in raw.files:
        core = _metadata(f.core_metadata)
        if f.core_metadata is None:  # PEP 714: only fall back to the old names when new absent
            core = _metadata(
                f.dist_info_metadata
                if f.dist_info_metadata is not None
                else f.data_dist_info_metadata
            )
        try:
            link, frag_hashes = _split_hash_fragment(urljoin(url, f.url))
        except ValueError:  # a "url" no URL parser takes (``http://[::1:x/``): not a file
            continue
        hashes = _hashes(f.hashes) or frag_hashes
        yanked: bool | str = f.yanked
        if isinstance(yanked, str) and not yanked:
            yanked = True
        rp = f.requires_python.strip() if f.requires_python else None
        files.append(
            DistFile(
                filename=f.filename,
                url=link,
                hashes=hashes,
                requires_python=rp or None,
                yanked=yanked,
                core_metadata=core,
                size=f.size,
                upload_time=f.upload_time,
            )
        )
    return ProjectPage(
        name=normalize_name(name or raw.name),
        url=url,
        files=files,
        versions=raw.versions,
        api_version=raw.meta.api_version,
        tracks=raw.meta.tracks,
        alternate_locations=raw.meta.alternate_locations,
    )


def parse_root_json(body: bytes, url: str) -> ProjectList:
    raw = _decode(_root_decoder, body, url)
    _check_version(url, raw.meta.api_version)
    return ProjectList(url=url, names=[p.name for p in raw.projects])
