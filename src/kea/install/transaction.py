"""Swap staged packages into an environment so that each one is fully old or fully new.

Design
------
All work for a command happens under one lock (``.kea.lock`` at the environment's root: the venv
directory, the ``--prefix`` or ``--target`` directory, or the interpreter's prefix; an exclusive
``flock`` (``kea.install.envlock``) released by the OS if the process dies; see
``lock_path``), so site-packages holds no kea file.
Every package gets a directory ``<site-packages>/.kea-staging/<txn>-<name>/`` (removed when
the run ends) holding its ``journal`` (a write-ahead log, one JSON list per line), its staged
``.dist-info``, ``new/<scheme key>/`` (staged entries that must be merged or swapped, see
``kea.install.wheel``) and ``trash/``.

Before staging, ``prepare`` picks the top-level entries no other package of the run names, and
``open_package`` (one call per package, in the staging workers) *claims* those of them that do not
exist yet (``["new", path]`` in its journal, written before the path is created); those are
created in place while staging, which saves a rename for them and a
directory tree to create and remove. Everything else is staged inside the package directory.
Until the package's ``.dist-info`` moves into place no installed package changes, so an
interrupt during staging (the long part: linking, launchers, bytecode) is undone by removing
the claimed paths.

Committing a package is a sequence of ``rename`` calls, each atomic and each written to the
journal *before* it is made:

1. displace: the old ``.dist-info`` (as one directory), then every old file from its RECORD (and
   its ``__pycache__`` entries) is renamed into ``trash/``;
2. place: staged top-level entries are renamed into place (whole directories when the target
   directory does not exist, else merged entry by entry; an unrelated file in the way is
   displaced to ``trash/`` first); the new ``.dist-info`` directory goes last;
3. ``["committed"]`` is appended to the journal: from here on the package is new; ``trash/``
   and the package directory are deleted and directories the old version left empty are
   removed.

Recovery runs (under the lock) at the start of every command that opens the environment for
writing: for a package whose journal does not end committed (nor holds the ``COMMITTED`` file
of earlier kea versions) the journal is replayed backwards — every rename that happened (its
source gone, its destination present) is reversed, directories kea created are removed and
claimed paths are deleted — so the old version is back exactly; a committed package only has its
cleanup finished. Either way the next install starts from a consistent environment. Packages are
committed one after another, so an interrupt leaves at most one package in the middle of step 1-2,
and that one is rolled back (with every package not committed yet).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import uuid
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from kea.dist.installed import InstalledDist
from kea.errors import KeaError
from kea.install.environment import Target
from kea.install.wheel import SCHEME_KEYS, StagedWheel

log = logging.getLogger("kea.install")

STAGING_DIR = ".kea-staging"
LOCK_FILE = ".kea.lock"
_KILL_ENV = "KEA_TEST_KILL_AFTER_RENAMES"  # fault injection for the interrupt tests
_COMMITTED = ["committed"]  # the journal's last line once a package is new


class _Journal:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._f: IO[str] = open(path, "a", encoding="utf-8")  # noqa: SIM115
        self.ops: list[list[str]] = []

    def add(self, op: list[str]) -> None:
        self.add_many([op])

    def add_many(self, ops: list[list[str]]) -> None:
        if ops:
            self._f.write("".join(json.dumps(op) + "\n" for op in ops))
            self._f.flush()
            self.ops.extend(ops)

    def close(self) -> None:
        self._f.close()


def _rmtree(path: str | Path, *, ignore_errors: bool = False) -> None:
    import shutil  # not on the path of an install that commits: only rollback and cleanup

    shutil.rmtree(path, ignore_errors=ignore_errors)


def _read_journal(path: Path) -> list[list[str]]:
    ops: list[list[str]] = []
    try:
        text = path.read_text("utf-8")
    except OSError:
        return ops
    for line in text.splitlines():
        try:
            op = json.loads(line)
        except ValueError:
            break  # a torn last line: its operation never started
        if isinstance(op, list) and all(isinstance(x, str) for x in op):
            ops.append(op)
    return ops


def lock_path(target: Target) -> Path:
    """Where the environment lock of ``target`` lives: its root, never inside site-packages.

    A venv (or a system interpreter): ``<sys.prefix>/.kea.lock``; ``--prefix DIR``:
    ``DIR/.kea.lock``; ``--target DIR``: ``DIR/.kea.lock`` (that directory is all there is).
    """
    if target.kind == "target":
        root = target.scheme.purelib
    elif target.kind == "prefix":
        root = target.scheme.data  # the prefix itself in every install scheme
    else:
        root = Path(target.interpreter.prefix)
    return root / LOCK_FILE


class EnvTransaction:
    """The lock on a target environment, recovery, and per-package commits.

    Use as a context manager: ``with EnvTransaction(target) as txn: ...``.
    """

    def __init__(self, target: Target, *, timeout: float = 600.0) -> None:
        self.target = target
        self.root = target.scheme.purelib
        self.staging = self.root / STAGING_DIR
        self.id = uuid.uuid4().hex[:12]
        self.timeout = timeout
        self._lock: Any = None
        self._journals: dict[str, _Journal] = {}  # open journals of packages being staged
        self._renames = 0
        kill = os.environ.get(_KILL_ENV)
        self._kill_after = int(kill) if kill and kill.isdigit() else None
        self._roots = {k: Path(getattr(target.scheme, k)) for k in SCHEME_KEYS}
        bases = {os.path.normpath(str(p)) for p in self._roots.values()}
        if target.kind == "venv":
            bases.add(os.path.normpath(target.interpreter.prefix))
        self._bases = sorted(bases)

    # -- lock + recovery ----------------------------------------------------------------------

    def __enter__(self) -> EnvTransaction:
        from kea.install.envlock import EnvLock, LockTimeout

        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise KeaError(f"cannot create {self.root}: {e.strerror}") from None
        path = lock_path(self.target)
        if not os.access(path.parent, os.W_OK):
            # e.g. a system interpreter whose prefix is read-only but whose site-packages is not
            path = self.root / LOCK_FILE
        self._lock = EnvLock(str(path))
        try:
            self._lock.acquire(timeout=self.timeout)
        except LockTimeout:
            raise KeaError(f"another kea process holds the environment lock {path}") from None
        except OSError as e:
            raise KeaError(f"cannot lock {path.parent}: {e.strerror}") from None
        self.recover()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for journal in self._journals.values():  # packages staged but never committed
            journal.close()
        self._journals.clear()
        try:
            # Uncommitted packages of this run (an error or Ctrl-C mid-way) are rolled back.
            self.recover()
        finally:
            if self._lock is not None:
                self._lock.release()

    def recover(self) -> int:
        """Roll back uncommitted package swaps, finish committed ones; returns how many."""
        try:
            entries = sorted(os.scandir(self.staging), key=lambda e: e.name)
        except OSError:
            return 0
        n = 0
        for entry in entries:
            pkg = Path(entry.path)
            ops = _read_journal(pkg / "journal")
            if _COMMITTED in ops or (pkg / "COMMITTED").exists():
                self._finish(pkg, ops)
            else:
                if ops:
                    log.debug("rolling back an interrupted change: %s", pkg.name)
                self._rollback(ops)
                _rmtree(pkg, ignore_errors=True)
            n += 1
        try:
            os.rmdir(self.staging)
        except OSError:
            pass
        return n

    def _rollback(self, ops: list[list[str]]) -> None:
        for op in reversed(ops):
            if op[0] == "mv" and len(op) == 3:
                src, dst = op[1], op[2]
                if not os.path.lexists(src) and os.path.lexists(dst):
                    try:
                        os.rename(dst, src)
                    except FileNotFoundError:
                        os.makedirs(os.path.dirname(src), exist_ok=True)
                        os.rename(dst, src)
            elif op[0] == "mkdir" and len(op) == 2:
                try:
                    os.rmdir(op[1])
                except OSError:
                    pass
            elif op[0] == "new" and len(op) == 2 and self._inside(op[1]):
                path = op[1]
                if os.path.isdir(path) and not os.path.islink(path):
                    _rmtree(path, ignore_errors=True)
                elif os.path.lexists(path):
                    os.unlink(path)

    def _inside(self, path: str) -> bool:
        p = os.path.normpath(path)
        return any(p.startswith(b + os.sep) for b in self._bases)

    def _finish(self, pkg: Path, ops: list[list[str]]) -> None:
        try:  # the usual leftovers: the journal, and the directories the commit emptied
            os.unlink(pkg / "journal")
            for here, _, files in os.walk(pkg, topdown=False):  # children first
                if files:
                    raise OSError(f"{here} is not empty")
                os.rmdir(here)
        except OSError:
            _rmtree(pkg, ignore_errors=True)
        staging = str(pkg) + os.sep
        for op in ops:
            if op[0] == "mv" and not op[1].startswith(staging):
                self._prune(os.path.dirname(op[1]))

    def _prune(self, directory: str) -> None:
        """Remove ``directory`` and its parents while empty, stopping at the scheme roots."""
        d = os.path.normpath(directory)
        while d not in self._bases and any(d.startswith(b + os.sep) for b in self._bases):
            try:
                os.rmdir(d)
            except OSError:
                return
            d = os.path.dirname(d)

    # -- staging ------------------------------------------------------------------------------

    def package_dir(self, name: str) -> Path:
        return self.staging / f"{self.id}-{name}"

    def prepare(
        self, packages: list[tuple[str, list[tuple[str, str]]]]
    ) -> list[list[tuple[str, str]]]:
        """Decide which top-level entries each package may claim (create in place).

        ``packages``: (canonical name, [(scheme key, top-level name), ...]) per package to
        stage. An entry is a candidate (returned in that package's list) when its scheme root
        exists, no other package of the run names the same path or one inside or around it
        (compared case-insensitively), and no scheme root lies inside it. Whether something is
        already at the path is checked by ``open_package``, which claims what is free; a
        candidate belongs to one package of this run alone, so that check cannot race with the
        staging of another package.
        """
        self.staging.mkdir(exist_ok=True)
        real = {k: os.path.realpath(v) for k, v in self._roots.items()}
        roots_ok = {k: os.path.isdir(v) for k, v in real.items()}
        bases = [os.path.realpath(b) for b in self._bases]
        owners: dict[str, set[int]] = {}  # casefolded real path -> packages naming it
        wanted: list[list[tuple[str, str, str]]] = []  # per package: (key, top, folded path)
        for i, (_, tops) in enumerate(packages):
            mine: list[tuple[str, str, str]] = []
            for key, top in tops:
                folded = os.path.join(real[key], top).casefold()
                owners.setdefault(folded, set()).add(i)
                mine.append((key, top, folded))
            wanted.append(mine)
        # Paths named by two packages, or nested in one another, or holding a root: nobody's.
        shared = {p for p, who in owners.items() if len(who) > 1}
        folded_bases = [b.casefold() for b in bases]
        for path in owners:
            up = os.path.dirname(path)
            while up != os.path.dirname(up):
                if up in owners:
                    shared.update((path, up))
                up = os.path.dirname(up)
            if any(b.startswith(path + os.sep) or b == path for b in folded_bases):
                shared.add(path)
        return [
            [(key, top) for key, top, folded in mine if folded not in shared and roots_ok[key]]
            for mine in wanted
        ]

    def open_package(
        self, name: str, candidates: list[tuple[str, str]]
    ) -> frozenset[tuple[str, str]]:
        """Make ``name``'s staging directory and journal, and claim the ``candidates`` (from
        ``prepare``) that do not exist yet: the claims go to the journal before anything is
        created, so rolling the package back removes them. Safe to call from worker threads,
        one call per package."""
        pkg = self.package_dir(name)
        pkg.mkdir()
        journal = _Journal(pkg / "journal")
        self._journals[name] = journal
        claims: list[tuple[str, str]] = []
        ops: list[list[str]] = []
        for key, top in candidates:
            path = os.path.join(str(self._roots[key]), top)
            if os.path.lexists(path):
                continue
            claims.append((key, top))
            ops.append(["new", path])
        journal.add_many(ops)
        return frozenset(claims)

    # -- commit -------------------------------------------------------------------------------

    def _mv(self, journal: _Journal, src: str, dst: str) -> None:
        journal.add(["mv", src, dst])
        if self._kill_after is not None:
            if self._renames >= self._kill_after:
                os.kill(os.getpid(), signal.SIGKILL)
            self._renames += 1
        try:
            os.rename(src, dst)
        except OSError as e:
            if e.errno != 18:  # EXDEV: scripts on another filesystem
                raise
            import shutil

            shutil.move(src, dst)

    def _makedirs(self, journal: _Journal, path: str) -> None:
        missing = []
        p = os.path.normpath(path)
        while not os.path.isdir(p):
            missing.append(p)
            p = os.path.dirname(p)
        for d in reversed(missing):
            journal.add(["mkdir", d])
            os.mkdir(d)

    def _old_files(self, old: InstalledDist) -> list[str]:
        out: list[str] = []
        seen: set[str] = set()
        di = os.path.normpath(str(old.dist_info))
        try:
            record = old.record()
        except KeaError:
            record = []
        for entry in record:
            path = os.path.normpath(os.path.join(str(old.root), entry.path))
            if path == di or path.startswith(di + os.sep) or path in seen:
                continue
            if not any(path.startswith(b + os.sep) for b in self._bases):
                log.warning("not removing %s: outside the environment", path)
                continue
            seen.add(path)
            if os.path.lexists(path):
                out.append(path)
            if path.endswith(".py"):
                cache = os.path.join(os.path.dirname(path), "__pycache__")
                stem = os.path.basename(path)[:-3] + "."
                try:
                    names = os.listdir(cache)
                except OSError:
                    continue
                for name in names:
                    if name.startswith(stem) and name.endswith(".pyc"):
                        pyc = os.path.join(cache, name)
                        if pyc not in seen:
                            seen.add(pyc)
                            out.append(pyc)
        return out

    def commit(
        self,
        staged: StagedWheel | None,
        old: InstalledDist | None,
        *,
        defer_cleanup: bool = False,
    ) -> Cleanup | None:
        """Replace ``old`` (may be None) with ``staged`` (None: just remove ``old``).

        The package is new once this returns. Its cleanup (the staging directory, the old
        version's files, directories left empty) follows at once, or with ``defer_cleanup`` is
        returned for the caller to run later (``Cleanup.run``, safe in worker threads; a kea
        killed before that leaves it to recovery, which finishes committed packages).
        """
        name = staged.name if staged is not None else old.name if old is not None else None
        if name is None:
            return None
        pkg = self.package_dir(name)
        journal = self._journals.pop(name, None)
        if journal is None:
            pkg.mkdir(parents=True, exist_ok=True)
            journal = _Journal(pkg / "journal")
        trash = pkg / "trash"
        counter = 0

        def displace(path: str) -> None:
            nonlocal counter
            if counter == 0:
                trash.mkdir(exist_ok=True)
            counter += 1
            self._mv(journal, path, str(trash / str(counter)))

        try:
            if old is not None:
                old_files = self._old_files(old)  # read RECORD before it moves
                if os.path.isdir(old.dist_info):
                    displace(str(old.dist_info))
                for path in old_files:
                    displace(path)
            if staged is not None:
                di_rel = staged.dist_info
                for key in SCHEME_KEYS:
                    if key not in staged.staged_keys:
                        continue
                    src_root = str(staged.stage / "new" / key)
                    dst_root = str(self._roots[key])
                    self._makedirs(journal, dst_root)
                    self._place(journal, src_root, dst_root, displace)
                di_src = str(staged.stage / di_rel)
                di_dst = os.path.join(str(self._roots[staged.root_key]), di_rel)
                if os.path.lexists(di_dst):
                    displace(di_dst)
                self._mv(journal, di_src, di_dst)  # the commit point of the move phase
            journal.add(_COMMITTED)
        except BaseException:
            journal.close()
            self._rollback(journal.ops)
            _rmtree(pkg, ignore_errors=True)
            raise
        journal.close()
        cleanup = Cleanup(self, pkg, journal.ops)
        if defer_cleanup:
            return cleanup
        cleanup.run()
        return None

    def _place(
        self,
        journal: _Journal,
        src_dir: str,
        dst_dir: str,
        displace: Any,
    ) -> None:
        with os.scandir(src_dir) as it:
            entries = sorted(it, key=lambda e: e.name)
        for entry in entries:
            dst = os.path.join(dst_dir, entry.name)
            if not os.path.lexists(dst):
                self._mv(journal, entry.path, dst)
            elif (
                entry.is_dir(follow_symlinks=False)
                and os.path.isdir(dst)
                and not os.path.islink(dst)
            ):
                self._place(journal, entry.path, dst, displace)
            else:
                displace(dst)
                self._mv(journal, entry.path, dst)


class Cleanup:
    """What is left to do for a committed package: its staging directory and trash go, and
    directories its old version left empty are removed."""

    def __init__(self, txn: EnvTransaction, pkg: Path, ops: list[list[str]]) -> None:
        self._txn, self._pkg, self._ops = txn, pkg, ops

    def run(self) -> None:
        self._txn._finish(self._pkg, self._ops)


def recover(target: Target) -> int:
    """Finish or roll back what an interrupted kea left in ``target`` (no-op if nothing)."""
    if not (target.scheme.purelib / STAGING_DIR).exists():
        return 0
    with EnvTransaction(target) as txn:
        return txn.recover()


__all__ = ["Cleanup", "EnvTransaction", "recover"]
