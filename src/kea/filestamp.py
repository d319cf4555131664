"""Identities of files, for answers kea keeps while the files they came from stay as they were:
the no-op fast path's stamps (``kea.cli.fastpath_stamp``) and the resolution memo
(``kea.resolver.provider_memo``); and the bound on how many such answers a directory keeps."""

from __future__ import annotations

import os
import sys

Identity = tuple[int, int, int, int]
# A file changed this close to a run's start (or later) may have been read before the change:
# an answer that depends on it is not kept (git treats its index the same way).
RACY_NS = 2_000_000_000


def identity(path: str) -> Identity | None:
    """(mtime_ns, size, inode, ctime_ns) of ``path`` (symlinks followed), or None when absent.

    The change time is there because nobody can set it: ``cp -p``, ``rsync -a --inplace`` or a
    tar restore can rewrite a file in place (same inode, same size) and put its mtime back.
    """
    try:
        st = os.stat(path)
    except OSError:
        return None
    return of_stat(st)


def of_stat(st: os.stat_result) -> Identity:
    return (st.st_mtime_ns, st.st_size, st.st_ino, st.st_ctime_ns)


def code_files() -> list[str]:
    """The source of the code that gave an answer: kea's modules and the libraries it used, as
    loaded by this run. An upgraded (or, in a checkout, edited) module makes the answers it
    gave miss, even when kea's version number did not change."""
    out = []
    for name, module in list(sys.modules.items()):
        if name.partition(".")[0] in ("kea", "packaging", "msgspec"):
            path = getattr(module, "__file__", None)
            if isinstance(path, str):
                out.append(os.path.abspath(path))
    return sorted(out)


def trim(directory: str, *, most: int, keep: int) -> None:
    """Past ``most`` files in ``directory`` (one per distinct answer kept, and leftovers of
    killed writers), remove the least recently written down to ``keep``."""
    try:
        names = os.listdir(directory)
        if len(names) <= most:
            return
        aged = []
        for name in names:
            path = os.path.join(directory, name)
            try:
                aged.append((os.stat(path).st_mtime_ns, path))
            except OSError:
                continue
        for _, path in sorted(aged)[: max(0, len(aged) - keep)]:
            try:
                os.unlink(path)
            except OSError:
                pass
    except OSError:
        pass
