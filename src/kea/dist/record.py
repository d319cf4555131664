"""``RECORD`` files: parse and write (where each path goes: ``kea.dist.placement``).

A RECORD row is ``path,hash,size``; paths are relative to the directory that holds the
``.dist-info`` directory and use ``/``.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable

import msgspec

from kea.dist.record_lines import csv_rows


class RecordEntry(msgspec.Struct, frozen=True):
    path: str
    hash: str = ""  # "sha256=<urlsafe-b64-nopad>" or ""
    size: int | None = None


def parse_record(text: str, *, source: str = "RECORD") -> list[RecordEntry]:
    """Every row of ``text`` with a path, read by ``csv``."""
    return [RecordEntry(path, digest, size) for path, digest, size in csv_rows(text, source=source)]


_URLSAFE = bytes.maketrans(b"+/", b"-_")


def hash_bytes(data: bytes) -> str:
    """``sha256=`` and the URL-safe base64 digest without padding, as RECORD has it.
    (binascii, not the base64 module: that costs a warm install 1.5 ms to import.)"""
    from binascii import b2a_base64

    from kea.digest import sha256

    encoded = b2a_base64(sha256(data).digest(), newline=False).translate(_URLSAFE)
    return "sha256=" + encoded.rstrip(b"=").decode("ascii")


_NEEDS_QUOTES = re.compile(r'[,"\r\n]')


def write_record(entries: Iterable[RecordEntry]) -> str:
    """RECORD text (CSV, ``\\n`` line ends). Rows without a comma, quote or line break in any
    field are joined as they are, which is what ``csv`` writes for them, without importing it."""
    rows = [(e.path, e.hash, "" if e.size is None else str(e.size)) for e in entries]
    if not any(_NEEDS_QUOTES.search(f"{path}{digest}") for path, digest, _ in rows):
        return "".join(f"{path},{digest},{size}\n" for path, digest, size in rows)
    import csv

    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue()
