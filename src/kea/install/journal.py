"""The write-ahead log of an install run, and how its operations are undone.

A run's ``run-journal`` (``kea.install.transaction`` says where it lives and when each line is
written) holds one JSON list per line: the package's name, then one operation:

- ``["mv", src, dst]``: ``src`` is about to be renamed to ``dst``;
- ``["mkdir", path]``: ``path`` is about to be created (empty);
- ``["new", path]``: ``path`` is claimed, about to be created in place while staging;
- ``["committed"]``: the package is new; only its cleanup is left.

Each line is written, and flushed, before its operation starts, so a line may name an
operation that never happened but no operation happened without its line. ``undo`` replays a
package's lines backwards and reverses only what happened: that is what makes the replay safe
to repeat, after any interruption, even of an earlier replay.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO

RUN_JOURNAL = "run-journal"  # a run's journal, created with its first line
COMMITTED = ["committed"]  # a package's last operation once it is new


class Journal:
    """A run's journal at ``path``, appended to by any thread. The file is created with the
    first line; each package's operations are kept in ``ops`` too."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._f: IO[str] | None = None
        self._lock = threading.Lock()
        self.ops: dict[str, list[list[str]]] = {}

    def add(self, name: str, op: list[str]) -> None:
        self.add_many(name, [op])

    def add_many(self, name: str, ops: list[list[str]]) -> None:
        if not ops:
            return
        text = "".join(json.dumps([name, *op]) + "\n" for op in ops)
        with self._lock:
            if self._f is None:
                self._f = open(self.path, "a", encoding="utf-8")  # noqa: SIM115
            self._f.write(text)
            self._f.flush()
            self.ops.setdefault(name, []).extend(ops)

    def close(self) -> None:
        with self._lock:
            if self._f is not None:
                self._f.close()
                self._f = None


def read_run_journal(path: Path) -> dict[str, list[list[str]]]:
    """A run's journal as it was left: each package's operations in order."""
    by_name: dict[str, list[list[str]]] = {}
    for line in _read_lines(path):
        if len(line) >= 2:
            by_name.setdefault(line[0], []).append(line[1:])
    return by_name


def _read_lines(path: Path) -> list[list[str]]:
    """The journal's lines that are lists of strings; reading stops at a torn last line."""
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


def undo(ops: list[list[str]], inside: Callable[[str], bool]) -> None:
    """Reverse, last first, whichever of a package's ``ops`` happened: a rename whose source is
    gone and whose destination is there goes back; a directory made is removed if still empty;
    a claimed path is deleted, provided ``inside`` says it is in the environment (a journal
    read back from disk never makes kea delete anything outside it)."""
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
        elif op[0] == "new" and len(op) == 2 and inside(op[1]):
            path = op[1]
            if os.path.isdir(path) and not os.path.islink(path):
                rmtree(path, ignore_errors=True)
            elif os.path.lexists(path):
                os.unlink(path)


def moved_in(staged_in: str | Path, ops: list[list[str]]) -> list[str]:
    """The sources of the renames in ``ops`` that came from outside ``staged_in`` (the old
    version's files displaced into the trash): their directories may be left empty."""
    staging = f"{staged_in}{os.sep}"
    return [op[1] for op in ops if op[0] == "mv" and not op[1].startswith(staging)]


def rmtree(path: str | Path, *, ignore_errors: bool = False) -> None:
    import shutil  # not on the path of an install that commits: only rollback and cleanup

    shutil.rmtree(path, ignore_errors=ignore_errors)
