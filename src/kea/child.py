"""The command line of another kea interpreter that this one starts: the unpacking workers
(``kea.cache.unpacker``), and a ``kea serve`` worker started in place of one that died
(``kea.serve.server``)."""

from __future__ import annotations

import sys


def kea_python(code: str) -> list[str]:
    """``python -c code`` on this interpreter. ``-P``: the working directory must not shadow
    modules. This interpreter's isolation flags and UTF-8 mode carry over (paths travel as
    text)."""
    flags = ["-P", "-X", f"utf8={sys.flags.utf8_mode}"]
    flags += ["-I"] if sys.flags.isolated else []
    flags += ["-E"] if sys.flags.ignore_environment and not sys.flags.isolated else []
    flags += ["-s"] if sys.flags.no_user_site and not sys.flags.isolated else []
    return [sys.executable, *flags, "-c", code]
