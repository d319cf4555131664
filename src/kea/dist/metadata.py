"""Core metadata (``METADATA`` / ``PKG-INFO``) parsed into a compact msgspec record.

Only the fields the resolver and installer need are kept: name, version, Requires-Dist,
Requires-Python and Provides-Extra. The body (long description) is never parsed.
"""

from __future__ import annotations

import msgspec
from kea.dist.names import canonicalize_name
from packaging.version import InvalidVersion, Version

from kea.errors import KeaError


class CoreMetadata(msgspec.Struct, frozen=True, array_like=True):
    """The dependency-relevant part of a distribution's core metadata."""

    name: str  # as written in the metadata (display name)
    version: str
    requires_dist: tuple[str, ...] = ()
    requires_python: str | None = None
    provides_extra: tuple[str, ...] = ()
    summary: str | None = None

    @property
    def canonical_name(self) -> str:
        return canonicalize_name(self.name)

    @property
    def parsed_version(self) -> Version:
        return Version(self.version)


def parse_headers(text: str) -> list[tuple[str, str]]:
    """RFC 822-style headers up to the first blank line; continuation lines are joined."""
    out: list[tuple[str, str]] = []
    for line in text.splitlines():
        if not line:  # a line of only spaces is a continuation (License texts have them)
            break
        if line[0] in " \t":
            if out:
                key, value = out[-1]
                out[-1] = (key, value + "\n" + line.strip())
            continue
        key, sep, value = line.partition(":")
        if not sep:
            continue
        out.append((key.strip().lower(), value.strip()))
    return out


def parse_metadata(data: bytes | str, *, source: str = "METADATA") -> CoreMetadata:
    """Parse core metadata; missing Name/Version or a bad version is a ``KeaError``."""
    text = data.decode("utf-8", errors="surrogateescape") if isinstance(data, bytes) else data
    name = version = requires_python = summary = None
    requires: list[str] = []
    extras: list[str] = []
    for key, value in parse_headers(text):
        if key == "name":
            name = value
        elif key == "version":
            version = value
        elif key == "requires-dist":
            requires.append(value)
        elif key == "requires-python":
            requires_python = value or None
        elif key == "provides-extra":
            extras.append(value)
        elif key == "summary":
            summary = value
    if not name:
        raise KeaError(f"{source}: invalid core metadata: no Name field")
    if not version:
        raise KeaError(f"{source}: invalid core metadata: no Version field")
    try:
        Version(version)
    except InvalidVersion:
        raise KeaError(f"{source}: invalid version {version!r} in core metadata") from None
    return CoreMetadata(
        name=name,
        version=version,
        requires_dist=tuple(requires),
        requires_python=requires_python,
        provides_extra=tuple(extras),
        summary=summary,
    )


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(CoreMetadata)


def encode_metadata(meta: CoreMetadata) -> bytes:
    """Compact bytes for caching (msgpack)."""
    return _encoder.encode(meta)


def decode_metadata(data: bytes) -> CoreMetadata:
    return _decoder.decode(data)
