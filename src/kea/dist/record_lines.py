"""A RECORD's rows: split by hand where that reads them as ``csv`` would, else by ``csv``.

Nearly every wheel writes RECORD without quoting, and then no field holds a comma or a line
break: splitting at line breaks and commas gives ``csv``'s rows, several times faster. Used by
the unpacking workers (``kea.cache.archive``), by the install layout (``kea.dist.placement``)
and by ``kea.dist.record``. The workers import it, so it imports nothing else of note
(``csv`` only when a RECORD needs it).
"""

from __future__ import annotations

from kea.errors import KeaError


def plain_lines(text: str) -> list[str] | None:
    """``text``'s lines (a ``\\r\\n`` ending cut), or None when a CSV parser must read it: a
    quote, or a ``\\r`` that does not end a line."""
    if '"' in text:
        return None
    if "\r" in text:
        text = text.replace("\r\n", "\n")
        if "\r" in text:
            return None
    return text.split("\n")


def size_of(field: str, path: str, source: str) -> int | None:
    """A row's size field: None when empty; a ``KeaError`` when it is not a number."""
    if not field:
        return None
    try:
        return int(field)
    except ValueError:
        raise KeaError(f"{source}: bad size {field!r} for {path!r}") from None


def csv_rows(text: str, *, source: str = "RECORD") -> list[tuple[str, str, int | None]]:
    """(path, hash, size) of every row with a path, as ``csv`` reads ``text``."""
    import csv
    import io

    out: list[tuple[str, str, int | None]] = []
    for row in csv.reader(io.StringIO(text)):
        if not row or not row[0]:
            continue
        path = row[0]
        digest = row[1] if len(row) > 1 else ""
        out.append((path, digest, size_of(row[2] if len(row) > 2 else "", path, source)))
    return out
