"""Swap staged packages into an environment so that each one is fully old or fully new.

Design
------
All work for a command happens under one lock (``.kea.lock`` at the environment's root: the venv
directory, the ``--prefix`` or ``--target`` directory, or the interpreter's prefix; an exclusive
``flock`` (``kea.install.envlock``) released by the OS if the process dies; see
``lock_path``), so site-packages holds no kea file.
A run that changes packages gets one directory ``<site-packages>/.kea-staging/<txn>/`` (removed
when the run ends) holding its ``run-journal`` (a write-ahead log shared by its packages:
``kea.install.journal`` gives its lines and how they are undone), every package's staged
``.dist-info`` (their names differ), and where needed ``<name>.new/<scheme key>/`` (staged
entries that must be merged or swapped, see ``kea.install.wheel``) and ``<name>.trash/``. One
directory and one journal per run, not per package: where each inode costs a scan of recently
freed ones (the bench's disk), making and removing a directory and a journal file for each of
jupyter's 97 packages took about 30 of the 230 ms its warm install spent installing.

Before staging, ``prepare`` picks the top-level entries no other package of the run names, and
``open_package`` (one call per package, in the staging workers) *claims* those of them that do not
exist yet (``["new", path]`` in its journal, written before the path is created); those are
created in place while staging, which saves a rename for them and a
directory tree to create and remove. Everything else is staged inside the run's directory.
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
3. ``[name, "committed"]`` is appended to the journal: from here on the package is new; its
   ``.trash`` and ``.new`` directories are deleted and directories the old version left empty
   are removed.

Recovery runs (under the lock) at the start of every command that opens the environment for
writing: for a package whose journal lines do not end committed its operations are replayed
backwards — every rename that happened (its
source gone, its destination present) is reversed, directories kea created are removed and
claimed paths are deleted — so the old version is back exactly; a committed package only has its
cleanup finished. Either way the next install starts from a consistent environment. Packages are
committed one after another, so an interrupt leaves at most one package in the middle of step 1-2,
and that one is rolled back (with every package not committed yet).
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from types import TracebackType
from typing import Any

import kea.log
from kea.dist.installed import InstalledDist
from kea.dist.placement import SCHEME_KEYS
from kea.errors import KeaError
from kea.install.environment import Target
from kea.install.journal import (
    COMMITTED,
    RUN_JOURNAL,
    Journal,
    moved_in,
    read_run_journal,
    rmtree,
    undo,
)
from kea.install.wheel import STAGING_DIR, StagedWheel, new_dir

log = kea.log.get("kea.install")

LOCK_FILE = ".kea.lock"


def _remove_dirs(path: str) -> None:
    """Remove ``path``, a tree that should hold only (empty) directories; whatever it holds."""
    try:
        for here, _, files in os.walk(path, topdown=False):  # children first
            if files:
                raise OSError(f"{here} is not empty")
            os.rmdir(here)
    except OSError:
        rmtree(path, ignore_errors=True)


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
        self.run_dir = self.staging / self.id
        self.timeout = timeout
        self._lock: Any = None
        self._journal = Journal(self.run_dir / RUN_JOURNAL)
        self._run_made = False
        self._done: set[str] = set()  # packages of this run with nothing left to do
        self.recovered = 0  # interrupted runs found on entering
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
        self.recovered = self.recover()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._journal.close()
        try:
            # Uncommitted packages of this run (an error or Ctrl-C mid-way) are rolled back.
            self.recover()
        finally:
            if self._lock is not None:
                self._lock.release()

    def recover(self) -> int:
        """Roll back uncommitted package swaps, finish committed ones; returns how many runs
        were found."""
        try:
            entries = sorted(os.scandir(self.staging), key=lambda e: e.name)
        except OSError:
            return 0
        n = 0
        for entry in entries:
            path = Path(entry.path)
            if entry.name == self.id:  # this run's: what it still has to do is known here
                self._end_run(path, self._journal.ops, skip=self._done)
            elif os.path.lexists(path / RUN_JOURNAL):
                self._end_run(path, read_run_journal(path / RUN_JOURNAL))
            else:  # a run killed before its journal's first line changed nothing in place
                rmtree(path, ignore_errors=True)
            n += 1
        try:
            os.rmdir(self.staging)
        except OSError:
            pass
        return n

    def _end_run(
        self,
        run: Path,
        by_name: dict[str, list[list[str]]],
        skip: set[str] | frozenset[str] = frozenset(),
    ) -> None:
        """Finish the committed packages of a run, roll back the others, remove its directory."""
        for name, ops in by_name.items():
            if name in skip:
                continue
            if COMMITTED in ops:
                self._finish(run, name, ops)
            else:
                if ops:
                    log.debug("rolling back an interrupted change: %s", name)
                self._rollback(ops)
        try:  # the usual leftover: the journal alone
            os.unlink(run / RUN_JOURNAL)
        except FileNotFoundError:
            pass
        except OSError:
            rmtree(run, ignore_errors=True)
            return
        try:
            os.rmdir(run)
        except FileNotFoundError:
            pass
        except OSError:  # staged dist-infos and trees of packages that never committed
            rmtree(run, ignore_errors=True)

    def _rollback(self, ops: list[list[str]]) -> None:
        undo(ops, self._inside)

    def _inside(self, path: str) -> bool:
        p = os.path.normpath(path)
        return any(p.startswith(b + os.sep) for b in self._bases)

    def _finish(
        self, run: Path, name: str, ops: list[list[str]], *, new: bool = True, trash: bool = True
    ) -> None:
        """A committed package's cleanup: its ``.new`` tree (emptied by the commit) and trash go,
        and directories its old version left empty are removed. ``new``/``trash``: whether
        either may exist (recovery does not know, and looks)."""
        if new and os.path.lexists(new_dir(run, name)):
            _remove_dirs(new_dir(run, name))
        if trash and os.path.lexists(_trash_dir(run, name)):
            rmtree(_trash_dir(run, name), ignore_errors=True)
        self._prune_after(str(run), ops)

    def _prune_after(self, staged_in: str, ops: list[list[str]]) -> None:
        for src in moved_in(staged_in, ops):
            self._prune(os.path.dirname(src))

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

    def _make_run_dir(self) -> None:
        if not self._run_made:
            try:
                self.staging.mkdir(exist_ok=True)
                self.run_dir.mkdir(exist_ok=True)
            except OSError as e:
                raise KeaError(
                    f"cannot write to {self.root}: {e.strerror}",
                    hint="nothing was changed; check that the environment is writable by you",
                ) from None
            self._run_made = True

    def stage_dir(self) -> Path:
        """Where this run stages packages (``plan_stage``'s ``stage``); made by ``prepare``."""
        return self.run_dir

    def prepare(
        self, packages: list[tuple[str, list[tuple[str, str]]]]
    ) -> list[list[tuple[str, str]]]:
        """Make the run's directory and decide which top-level entries each package may claim
        (create in place).

        ``packages``: (canonical name, [(scheme key, top-level name), ...]) per package to
        stage. An entry is a candidate (returned in that package's list) when its scheme root
        exists, no other package of the run names the same path or one inside or around it
        (compared case-insensitively), and no scheme root lies inside it. Whether something is
        already at the path is checked by ``open_package``, which claims what is free; a
        candidate belongs to one package of this run alone, so that check cannot race with the
        staging of another package.
        """
        self._make_run_dir()
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
        """Claim the ``candidates`` (from ``prepare``) of package ``name`` that do not exist
        yet: the claims go to the journal before anything is created, so rolling the package
        back removes them. Safe to call from worker threads, one call per package."""
        claims: list[tuple[str, str]] = []
        ops: list[list[str]] = []
        for key, top in candidates:
            path = os.path.join(str(self._roots[key]), top)
            if os.path.lexists(path):
                continue
            claims.append((key, top))
            ops.append(["new", path])
        self._journal.add_many(name, ops)
        return frozenset(claims)

    # -- commit -------------------------------------------------------------------------------

    def _mv(self, name: str, src: str, dst: str) -> None:
        self._journal.add(name, ["mv", src, dst])
        try:
            os.rename(src, dst)
        except OSError as e:
            if e.errno != 18:  # EXDEV: scripts on another filesystem
                raise
            import shutil

            shutil.move(src, dst)

    def _makedirs(self, name: str, path: str) -> None:
        missing = []
        p = os.path.normpath(path)
        while not os.path.isdir(p):
            missing.append(p)
            p = os.path.dirname(p)
        for d in reversed(missing):
            self._journal.add(name, ["mkdir", d])
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

        The package is new once this returns. Its cleanup (its trash and ``.new`` tree, the old
        version's files, directories left empty) follows at once, or with ``defer_cleanup`` is
        returned for the caller to run later (``Cleanup.run``, safe in worker threads; a kea
        killed before that leaves it to recovery, which finishes committed packages).
        """
        name = staged.name if staged is not None else old.name if old is not None else None
        if name is None:
            return None
        self._make_run_dir()
        run = str(self.run_dir)
        trash = _trash_dir(run, name)
        counter = 0

        def displace(path: str) -> None:
            nonlocal counter
            if counter == 0:
                os.mkdir(trash)
            counter += 1
            self._mv(name, path, f"{trash}/{counter}")

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
                    src_root = f"{new_dir(run, name)}/{key}"
                    dst_root = str(self._roots[key])
                    self._makedirs(name, dst_root)
                    self._place(name, src_root, dst_root, displace)
                di_src = f"{run}/{di_rel}"
                di_dst = os.path.join(str(self._roots[staged.root_key]), di_rel)
                if os.path.lexists(di_dst):
                    displace(di_dst)
                self._mv(name, di_src, di_dst)  # the commit point of the move phase
            self._journal.add(name, COMMITTED)
        except BaseException:
            self._rollback(self._journal.ops.get(name, []))
            for leftover in (new_dir(run, name), trash):
                rmtree(leftover, ignore_errors=True)
            if staged is not None:
                rmtree(f"{run}/{staged.dist_info}", ignore_errors=True)
            self._done.add(name)
            raise
        cleanup = Cleanup(
            self, name, self._journal.ops[name], new=bool(staged and staged.staged_keys),
            trash=counter > 0,
        )  # fmt: skip
        if defer_cleanup:
            return cleanup
        cleanup.run()
        return None

    def _place(
        self,
        name: str,
        src_dir: str,
        dst_dir: str,
        displace: Any,
    ) -> None:
        with os.scandir(src_dir) as it:
            entries = sorted(it, key=lambda e: e.name)
        for entry in entries:
            dst = os.path.join(dst_dir, entry.name)
            if not os.path.lexists(dst):
                self._mv(name, entry.path, dst)
            elif (
                entry.is_dir(follow_symlinks=False)
                and os.path.isdir(dst)
                and not os.path.islink(dst)
            ):
                self._place(name, entry.path, dst, displace)
            else:
                displace(dst)
                self._mv(name, entry.path, dst)


def _trash_dir(run: str | Path, name: str) -> str:
    return f"{run}/{name}.trash"


class Cleanup:
    """What is left to do for a committed package: its trash and ``.new`` tree go, and
    directories its old version left empty are removed. ``new``/``trash``: whether it has
    either (a fresh package claimed in full has neither: nothing to remove)."""

    def __init__(
        self, txn: EnvTransaction, name: str, ops: list[list[str]], *, new: bool, trash: bool
    ) -> None:
        self._txn, self._name, self._ops = txn, name, ops
        self._new, self._trash = new, trash

    @property
    def removes(self) -> bool:
        """Whether there is anything to remove (a fresh package claimed in full has nothing)."""
        return self._new or self._trash or bool(moved_in(self._txn.run_dir, self._ops))

    def run(self) -> None:
        txn = self._txn
        txn._finish(txn.run_dir, self._name, self._ops, new=self._new, trash=self._trash)
        txn._done.add(self._name)


def recover(target: Target) -> int:
    """Finish or roll back what an interrupted kea left in ``target`` (no-op if nothing)."""
    if not (target.scheme.purelib / STAGING_DIR).exists():
        return 0
    with EnvTransaction(target) as txn:
        return txn.recovered


__all__ = ["Cleanup", "EnvTransaction", "recover"]
