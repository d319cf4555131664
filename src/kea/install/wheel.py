"""Lay one unpacked wheel (an immutable archive directory) out for a target scheme.

Two steps. ``read_wheel`` reads the archive's dist-info and decides where every file goes (scheme
key ``purelib``, ``platlib``, ``scripts``, ``data`` or ``headers``, and a path under it):
``.data/`` parts go to their schemes, console/GUI launchers are generated (the ``installer``
library's script maker); a path that escapes its root (``..``, absolute) is refused before
anything is created. ``plan_stage`` then works out how to lay it out: files linked from the
archive, ``#!python`` scripts rewritten, ``INSTALLER``, ``REQUESTED`` and ``direct_url.json``
written; ``kea.install.stage`` carries the plans out.

Where: the dist-info always goes to the run's staging directory (it moves into place last, the
commit point); top-level entries the transaction has claimed (``direct``: nothing was there, no
other package of the run wants the same name, and the claim is in the run's journal, so an
interrupted install removes them) are created in place; everything else is staged under
``<staging>/<name>.new/<key>/`` and moved at commit (``kea.install.transaction``).

Paths and hashes come from the archive's ``RECORD`` (never recomputed); the installed RECORD
keeps the archive's own rows for files installed under the same path and writes only the others.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from kea.dist.metadata import parse_metadata
from kea.dist.placement import SCHEME_KEYS, place
from kea.dist.record import RecordEntry, hash_bytes, write_record
from kea.errors import KeaError
from kea.install.environment import Scheme

if TYPE_CHECKING:
    from kea.install.threads import Threads

_LIBS = ("purelib", "platlib")


class WheelLayout(msgspec.Struct):
    """An archive read and checked, with every file's place; nothing is staged yet.

    Computed once per archive and kept inside it (``LAYOUT_FILE``, see ``read_wheel``): the
    archive never changes, and reading its RECORD again costs about 1 ms per wheel. The shape is
    made for loading and linking fast: most files are root-key files whose archive RECORD line is
    kept as it is, and for those the line alone is stored (its first field is the path, the same
    in the archive and under the root).
    """

    archive: Path
    name: str  # canonical
    display_name: str
    version: str
    dist_info: str  # directory name, e.g. foo-1.0.dist-info
    root_key: str  # "purelib" or "platlib": where the dist-info goes
    kept_rows: list[str]  # RECORD lines of root-key files kept as they are (no quoting in them)
    others: list[tuple[str, str, str, str, int | None]]  # (key, rel, archive path, hash, size)
    dirs: list[
        tuple[str, str]
    ]  # (key, directory) of every file, the dist-info's too; parents first
    tops: list[tuple[str, str, bool]]  # (key, top-level name, is a file) except the dist-info
    # (console|gui, name, the launcher's code below its #! line: the ``installer`` library's)
    entry_points: list[tuple[str, str, bytes]]
    launchers: list[tuple[str, bytes]] = msgspec.field(default_factory=list)  # (file name, content)

    def top_levels(self, *, compile_bytecode: bool = False) -> list[tuple[str, str]]:
        """(key, top-level name) of what this wheel puts in each scheme, except its dist-info.

        These may be created in place when nothing is there yet (``kea.install.transaction``
        decides). With ``compile_bytecode`` a top-level ``.py`` file of purelib/platlib is left
        out: its ``.pyc`` would go to a shared ``__pycache__``, outside the entry.
        """
        return [
            (key, top)
            for key, top, is_file in self.tops
            if not (is_file and compile_bytecode and key in _LIBS and top.endswith(".py"))
        ]


class StagedWheel(msgspec.Struct):
    """A wheel laid out for its target, ready to commit (``kea.install.transaction``).

    Where a file is (``staged_path``): the dist-info under ``stage/<dist-info>/``; an entry of
    ``direct`` (``(key, top-level name)``) already in place under its scheme root; anything else
    under ``stage/<name>.new/<key>/`` (``new_dir``). The stage is shared by the packages of a
    run: their dist-info and ``.new`` names differ.
    """

    name: str  # canonical
    display_name: str
    version: str
    stage: Path  # the run's staging directory
    dist_info: str  # directory name, e.g. foo-1.0.dist-info
    root_key: str  # "purelib" or "platlib": where the dist-info goes
    roots: dict[str, str] = msgspec.field(default_factory=dict)  # scheme key -> target directory
    direct: frozenset[tuple[str, str]] = frozenset()
    # RECORD rows kea writes: (key, rel) -> entry (data-scheme files, rewritten or generated ones)
    files: dict[tuple[str, str], RecordEntry] = msgspec.field(default_factory=dict)
    # root-key paths whose archive row is kept
    kept: list[str] = msgspec.field(default_factory=list)
    # those rows, as the archive has them
    kept_rows: list[str] = msgspec.field(default_factory=list)
    staged_keys: frozenset[str] = frozenset()  # keys with entries under <new_dir>/<key>/

    def staged_path(self, key: str, rel: str) -> Path:
        return Path(_locate(self, key, rel))

    def paths(self) -> list[tuple[str, str]]:
        """(key, rel) of every file of the package."""
        return [(self.root_key, p) for p in self.kept] + list(self.files)


def new_dir(stage: str | Path, name: str) -> str:
    """Where package ``name`` (canonical) stages the entries it cannot create in place."""
    return f"{stage}/{name}.new"


def _locate(staged: StagedWheel, key: str, rel: str) -> str:
    top = rel.partition("/")[0]
    if key == staged.root_key and top == staged.dist_info:
        return f"{staged.stage}/{rel}"
    if (key, top) in staged.direct:
        return f"{staged.roots[key]}/{rel}"
    return f"{new_dir(staged.stage, staged.name)}/{key}/{rel}"


def find_dist_info(archive: Path, label: str | None = None) -> Path:
    """The one ``.dist-info`` directory of ``archive``; errors name the wheel by ``label``
    (its file name) when known, else by the archive's path in the cache."""
    try:
        found = [p for p in archive.iterdir() if p.name.endswith(".dist-info") and p.is_dir()]
    except OSError as e:
        raise KeaError(f"cannot read wheel archive {archive}: {e.strerror}") from None
    if len(found) != 1:
        what = "no" if not found else "more than one"
        raise KeaError(f"invalid wheel {label or archive}: {what} .dist-info directory")
    return found[0]


def _shebang(executable: str) -> bytes:
    exe = executable.encode()
    if b" " not in exe and len(exe) + 3 <= 127:
        return b"#!" + exe + b"\n"
    # A shebang that /bin/sh re-executes with the real interpreter (paths with spaces).
    return b"#!/bin/sh\n'''exec' \"" + exe + b'" "$0" "$@"\n\' \'\'\'\n'


def _entry_points(text: str, source: str) -> list[tuple[str, str, str, str]]:
    """(section, name, module, attr) for console_scripts and gui_scripts."""
    import configparser  # only when an archive's layout is first computed

    parser = configparser.ConfigParser(delimiters=("=",), interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    try:
        parser.read_string(text, source)
    except configparser.Error as e:
        raise KeaError(f"{source}: invalid entry_points.txt: {e.message}") from None
    out = []
    for section, kind in (("console_scripts", "console"), ("gui_scripts", "gui")):
        if not parser.has_section(section):
            continue
        for name, value in parser.items(section):
            target = value.split("[", 1)[0].strip()
            module, _, attr = target.partition(":")
            module, attr = module.strip(), attr.strip()
            if not module or not attr or "/" in name or name in ("", ".", ".."):
                raise KeaError(f"{source}: invalid entry point {name} = {value}")
            out.append((kind, name.strip(), module, attr))
    return out


def read_wheel(archive: Path, executable: str, filename: str | None = None) -> WheelLayout:
    """The layout of ``archive`` with launchers for ``executable``; every path checked (an
    error names the wheel by ``filename`` when given).

    Launchers are the ``installer`` library's, generated once per archive; only their ``#!``
    line (``_shebang``, the same rule as ``#!python`` scripts get) is made per interpreter, so a
    warm install does not import ``installer`` (about 20 ms).

    The executable-independent part is read from ``<archive>/LAYOUT_FILE`` when a previous run
    left it there, else computed from the dist-info and written there (atomically; a read-only
    cache just means computing it every time).
    """
    layout = _load_layout(archive)
    if layout is None:
        layout = _compute_layout(archive, filename)
        _save_layout(layout)
    return _with_launchers(layout, executable)


# The layouts ``keep_layout`` worked out in this process, by archive path: the install takes
# each from here instead of loading back the file just written (97 of them took 9-15 ms of a
# cold jupyter install, between its last wheel unpacked and its first file linked).
_KEPT: dict[str, WheelLayout] = {}


def keep_layout(archive: Path) -> None:
    """Work out and keep the layout of a freshly unpacked ``archive`` now, so that installing
    it only loads it. The cold path calls this as each wheel is unpacked, while the others
    still download and unpack: done at install time instead, jupyter's 97 layouts held up
    the install by 120-138 ms. A wheel whose layout cannot be worked out is left alone; the
    install meets the same error and reports it. One already there is left for the install to
    load (and to recompute, should it be unreadable)."""
    if os.path.exists(f"{archive}/{LAYOUT_FILE}"):
        return
    try:
        layout = _compute_layout(archive)
    except KeaError:
        return
    _save_layout(layout)
    _KEPT[os.fspath(archive)] = layout


def read_wheels(
    archives: Sequence[Path],
    executable: str,
    pool: Threads,
    filenames: Sequence[str | None] | None = None,
) -> list[WheelLayout]:
    """``read_wheel`` of each archive (``filenames``: the wheels', to name them in errors).
    Layouts this process kept (``keep_layout``) are taken as they are; those kept by an
    earlier run are loaded in this thread: each is a small marshal load, pure Python work that
    only waits for the GIL behind the pool's threads (97 of them: 7-14 ms here, 13-18 ms in a
    pool of 4). Layouts to compute (a first install from the archive: RECORD read and checked)
    go to ``pool``."""
    found = [_KEPT.pop(os.fspath(a), None) or _load_layout(a) for a in archives]
    todo = [i for i, lay in enumerate(found) if lay is None]
    names = filenames or [None] * len(archives)
    made = pool.map(lambda i: read_wheel(archives[i], executable, names[i]), todo)
    computed = dict(zip(todo, made, strict=True))
    return [
        computed[i] if lay is None else _with_launchers(lay, executable)
        for i, lay in enumerate(found)
    ]


def _with_launchers(layout: WheelLayout, executable: str) -> WheelLayout:
    if layout.entry_points:
        shebang = _shebang(executable)
        layout.launchers = [(name, shebang + body) for _, name, body in layout.entry_points]
    return layout


# The cached layout: a marshal'd tuple, written inside the (otherwise immutable) archive
# directory under a name no wheel can have at its top level next to its dist-info check (it
# starts with a dot and is not in RECORD; nothing reads the archive by listing it except
# ``find_dist_info``, which only looks at ``*.dist-info``).
LAYOUT_FILE = ".kea-layout"
_LAYOUT_FORMAT = "kea-layout-3"


def _load_layout(archive: Path) -> WheelLayout | None:
    import marshal

    try:
        with open(f"{archive}/{LAYOUT_FILE}", "rb") as f:
            data = marshal.load(f)
        fmt, name, display, version, di, root_key, rows, others, dirs, tops, eps = data
        if fmt != _LAYOUT_FORMAT or not all(isinstance(x, list) for x in (others, dirs, tops, eps)):
            return None
        kept_rows = rows.split("\n") if rows else []
        return WheelLayout(
            archive, name, display, version, di, root_key, kept_rows, others, dirs, tops, eps
        )
    except (OSError, EOFError, ValueError, TypeError, AttributeError):
        return None


def _save_layout(layout: WheelLayout) -> None:
    import marshal
    import uuid

    data = (
        _LAYOUT_FORMAT,
        layout.name,
        layout.display_name,
        layout.version,
        layout.dist_info,
        layout.root_key,
        "\n".join(layout.kept_rows),  # one string loads much faster than 12,000
        layout.others,
        layout.dirs,
        layout.tops,
        layout.entry_points,
    )
    tmp = f"{layout.archive}/{LAYOUT_FILE}.{uuid.uuid4().hex}"
    try:
        with open(tmp, "xb") as f:
            marshal.dump(data, f)
        os.replace(tmp, f"{layout.archive}/{LAYOUT_FILE}")
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass


def _compute_layout(archive: Path, filename: str | None = None) -> WheelLayout:
    """Read ``archive``'s dist-info and check every path, before anything is created. Errors
    name the wheel by ``filename``, else by its dist-info directory (the archive's own name
    in the cache is a digest, which tells a reader nothing)."""
    dist_info = find_dist_info(archive, filename)
    di = dist_info.name
    label = filename or di
    base = os.fspath(dist_info)
    meta = parse_metadata(_read(f"{base}/METADATA", label), source=f"{label}: METADATA")
    wheel_text = _text(f"{base}/WHEEL", label)
    record_text = _text(f"{base}/RECORD", label)
    root_key, kept_rows, others, dirs, tops = place(
        record_text, wheel_text, di, label=label, headers_name=meta.name
    )
    entry_points: list[tuple[str, str, bytes]] = []
    ep_path = f"{base}/entry_points.txt"
    if os.path.isfile(ep_path):
        from installer.scripts import Script

        for kind, name, module, attr in _entry_points(_text(ep_path, label), label):
            script = Script(name, module, attr, section=kind)  # type: ignore[arg-type]
            # The launcher's code after its #! line; the line itself is the interpreter's.
            _, data = script.generate("/python", "posix")
            entry_points.append((kind, name, data.split(b"\n", 1)[1]))
            tops[("scripts", name)] = True
    return WheelLayout(
        archive=archive,
        name=meta.canonical_name,
        display_name=meta.name,
        version=meta.version,
        dist_info=di,
        root_key=root_key,
        kept_rows=kept_rows,
        others=others,
        dirs=dirs,
        tops=[(key, top, is_file) for (key, top), is_file in tops.items()],
        entry_points=entry_points,
    )


def _read(path: str, label: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise KeaError(f"invalid wheel {label}: cannot read {path}: {e.strerror}") from None


def _text(path: str, label: str) -> str:
    """A dist-info file of the archive, which must be UTF-8 (a ``KeaError`` names it if not)."""
    try:
        return _read(path, label).decode("utf-8")
    except UnicodeDecodeError as e:
        raise KeaError(
            f"invalid wheel {label}: {'/'.join(path.split('/')[-2:])} is not UTF-8 "
            f"({e.reason} at byte {e.start})",
            hint="the wheel is malformed; nothing was installed",
        ) from None


class StagePlan(msgspec.Struct):
    """What laying one wheel out takes, worked out before anything is created: its directories
    (parents first), the files to link from the archive and the files kea writes. ``run_stages``
    (``kea.install.stage``) carries out the plans of a whole install together."""

    layout: WheelLayout
    staged: StagedWheel
    dirs: list[str]
    # The root-key files kept as they are (``staged.kept``, most of a wheel) are linked from
    # ``<archive>/<rel>`` to ``bases[top-level entry of rel] + rel``: their paths are made as
    # they are linked, not held for the whole install (60,000 tuples for the bench's large set).
    bases: dict[str, str]
    links: list[tuple[str, str, str]]  # others: (source in the archive, destination, its path)
    writes: list[tuple[str, bytes, int]]  # (destination, content, mode)


# kea's own directory in site-packages, where a run stages what it installs and journals it
# (``kea.install.transaction``): no wheel may put anything there.
STAGING_DIR = ".kea-staging"


def _reaches_staging(layout: WheelLayout, scheme: Scheme) -> bool:
    """Whether a file of another scheme lands in site-packages' ``STAGING_DIR`` all the same
    (``<name>.data/data/lib/python3.X/site-packages/.kea-staging/...``: the data scheme's root is
    the environment's). Only paths naming that directory are resolved."""
    suspects = [(key, rel) for key, rel, *_ in layout.others if STAGING_DIR in rel.split("/")]
    if not suspects:
        return False
    staging = {os.path.realpath(f"{getattr(scheme, k)}/{STAGING_DIR}") for k in _LIBS}
    for key, rel in suspects:
        place = os.path.realpath(f"{getattr(scheme, key)}/{rel}")
        if any(place == s or place.startswith(f"{s}/") for s in staging):
            return True
    return False


def plan_stage(
    layout: WheelLayout,
    stage: Path,
    *,
    scheme: Scheme,
    executable: str,
    direct: frozenset[tuple[str, str]] = frozenset(),
    direct_url: str | None = None,
    requested: bool = True,
    record: bool = True,
) -> StagePlan:
    """Plan to lay ``layout`` out: its dist-info and non-``direct`` entries under ``stage`` (an
    existing directory the packages of one run share), its ``direct`` top-level entries in
    place (they must not exist yet). Reads the ``#!python`` scripts it rewrites; creates
    nothing. With ``record`` the RECORD is among the writes (without, the caller writes it:
    after compiling bytecode)."""
    di = layout.dist_info
    root_key = layout.root_key
    if any(top == STAGING_DIR for _, top, _ in layout.tops) or _reaches_staging(layout, scheme):
        raise KeaError(
            f"{layout.display_name} {layout.version}: the wheel writes into {STAGING_DIR}, "
            "the directory where kea stages installs",
            hint="nothing was installed; the wheel is at fault",
        )
    staged = StagedWheel(
        name=layout.name,
        display_name=layout.display_name,
        version=layout.version,
        stage=stage,
        dist_info=di,
        root_key=root_key,
        roots={k: str(getattr(scheme, k)) for k in SCHEME_KEYS},
        direct=direct,
    )

    # 1. Directories: one mkdir each, parents first; <name>.new/<key> only where needed.
    staged_keys = {key for key, top, _ in layout.tops if (key, top) not in direct}
    staged.staged_keys = frozenset(staged_keys)
    new = new_dir(stage, layout.name)
    dirs = [new] if staged_keys else []
    dirs += [f"{new}/{key}" for key in sorted(staged_keys)]
    dirs += [_locate(staged, k, r) for k, r in layout.dirs]

    # 2. Files: linked from the archive; scripts with #!python are rewritten copies.
    arch = str(layout.archive)
    links: list[tuple[str, str, str]] = []
    writes: list[tuple[str, bytes, int]] = []
    files = staged.files
    roots = staged.roots
    # Root-key files whose RECORD line is kept: where each goes depends on its top-level entry.
    here, staged_root = f"{roots[root_key]}/", f"{new}/{root_key}/"
    base = {
        top: here if (key, top) in direct else staged_root
        for key, top, _ in layout.tops
        if key == root_key
    }
    base[di] = f"{stage}/"
    staged.kept = [row.partition(",")[0] for row in layout.kept_rows]
    staged.kept_rows = layout.kept_rows
    shebang = _shebang(executable)
    for key, rel, path, digest, size in layout.others:
        src = f"{arch}/{path}"
        dst = _locate(staged, key, rel)
        if key == "data" and rel.count("/") == 1 and rel.split("/")[0] in ("bin", "Scripts"):
            _refuse_reserved_script(layout, rel, executable)  # <prefix>/bin/ of a venv
        if key == "scripts":
            _refuse_reserved_script(layout, rel, executable)
            # A #!python script gets this interpreter's #! line (a rewritten copy); any other
            # script (a shell script, a 25 MB binary) is linked like any file when the archive
            # already has it executable, and copied with the executable bits otherwise.
            try:
                with open(src, "rb") as f:
                    head = f.read(8)
                    rewrite = head == b"#!python"
                    link_it = not rewrite and os.fstat(f.fileno()).st_mode & 0o111 == 0o111
                    data = b"" if link_it else head + f.read()
            except FileNotFoundError:
                raise missing_file(layout, path) from None
            if rewrite:
                data = shebang + data.split(b"\n", 1)[1] if b"\n" in data else shebang
                files[(key, rel)] = RecordEntry("", hash_bytes(data), len(data))
            else:
                files[(key, rel)] = RecordEntry(path, digest, size)
            if link_it:
                links.append((src, dst, path))
            else:
                writes.append((dst, data, 0o755))
            continue
        links.append((src, dst, path))
        files[(key, rel)] = RecordEntry(path, digest, size)

    # 3. Launchers for console and GUI entry points.
    for fname, data in layout.launchers:
        _refuse_reserved_script(layout, fname, executable)
        writes.append((_locate(staged, "scripts", fname), data, 0o755))
        files[("scripts", fname)] = RecordEntry("", hash_bytes(data), len(data))

    # 4. Files kea writes into the dist-info.
    extra = {"INSTALLER": b"kea\n"}
    if requested:
        extra["REQUESTED"] = b""
    if direct_url is not None:
        extra["direct_url.json"] = direct_url.encode()
    for fname, data in extra.items():
        rel = f"{di}/{fname}"
        writes.append((f"{stage}/{rel}", data, 0o644))
        files[(root_key, rel)] = RecordEntry("", hash_bytes(data), len(data))
    if record:
        writes.append((record_path(staged), record_bytes(staged), 0o644))
    return StagePlan(layout, staged, dirs, base, links, writes)


# What a script may not replace in the scripts directory: the environment's interpreter (under
# any of its names) and its activation scripts. A wheel's `python = mod:main` entry point made
# bin/python a launcher whose #! line named itself: kea (and everything else) could no longer
# run that environment, not even to uninstall the package.
_INTERPRETER_NAME = re.compile(r"(?i)python(\d+(\.\d+)?t?)?w?(\.exe)?|pypy\d*(\.\d+)?(\.exe)?")
_ACTIVATION = frozenset(
    {"activate", "activate.bat", "activate.csh", "activate.fish", "activate.nu", "activate.ps1",
     "activate_this.py", "deactivate.bat", "deactivate.nu"}
)  # fmt: skip


def _refuse_reserved_script(layout: WheelLayout, name: str, executable: str) -> None:
    base = name.rpartition("/")[2]
    if (
        _INTERPRETER_NAME.fullmatch(base)
        or base.lower() in _ACTIVATION
        or base == os.path.basename(executable)
    ):
        raise KeaError(
            f"{layout.display_name} {layout.version}: its script {base!r} would replace the "
            "environment's own interpreter or activation script",
            hint="nothing was installed; the wheel is at fault (a script of that name)",
        )


def missing_file(layout: WheelLayout, path: str) -> KeaError:
    """A file of the wheel's RECORD missing from its unpacked copy. Unpacking checks that the
    wheel has every file its RECORD lists, so the copy in the cache was damaged since (a file
    deleted by hand, a disk cleaner); ``kea cache clean NAME`` removes it, and the next run
    downloads or unpacks the wheel again."""
    root = layout.archive.parent.parent  # <cache>/<archive bucket>/<sha256>
    return KeaError(
        f"the cached copy of {layout.display_name} {layout.version} is damaged: "
        f"{path} is missing from {layout.archive}",
        hint=f"remove it with `kea cache clean {layout.name} --cache-dir {root}`, then run "
        "the command again",
    )


def write_new(path: str, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    os.chmod(path, mode)


def write_staged_record(staged: StagedWheel) -> None:
    """Write the dist-info's RECORD (``record_bytes``) into the staging directory."""
    write_new(record_path(staged), record_bytes(staged), 0o644)


def record_path(staged: StagedWheel) -> str:
    return f"{staged.stage}/{staged.dist_info}/RECORD"


def record_bytes(staged: StagedWheel) -> bytes:
    """The dist-info's RECORD with the *installed* paths (relative to its root): the archive's
    own rows for files installed where the archive has them, then the other rows."""
    roots = staged.roots
    base = roots[staged.root_key]
    # Each scheme key's root relative to the dist-info's root, worked out once: an entry's ``rel``
    # is already a normal relative path (unpacking checked it), so joining is enough.
    prefix = {staged.root_key: ""}
    rows: list[RecordEntry] = []
    for (key, rel), entry in sorted(staged.files.items()):
        head = prefix.get(key)
        if head is None:
            up = os.path.relpath(roots[key], base).replace(os.sep, "/")
            head = prefix[key] = "" if up == "." else up + "/"
        rows.append(RecordEntry(head + rel, entry.hash, entry.size))
    rows.append(RecordEntry(f"{staged.dist_info}/RECORD", "", None))
    kept = "\n".join(staged.kept_rows)
    return ((kept + "\n" if kept else "") + write_record(rows)).encode()
