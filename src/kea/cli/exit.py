"""End a finished kea process without the interpreter's teardown (stdlib only, imported late).

The teardown of a process that has imported the resolver and the installer was measured at
40-140 ms (the last output line to the exit of jupyter's install, on the benchmark machine under
load) against 6-8 ms without it; after a no-op answered from its stamp it is ~2 ms, as much as the
check itself. What must happen at exit still happens: atexit handlers run (a ``--no-cache``
temporary cache is removed there, logging is flushed), then stdout and stderr are flushed.
"""

from __future__ import annotations

import os
import sys


def quick_exit(code: int) -> None:
    """Exit now with ``code`` (1 instead of 0 if the output cannot be flushed), skipping the
    teardown; or return, and let the caller exit normally, when a profiler or tracer is active
    (``python -m cProfile -m kea`` and coverage write their results at the very end) or another
    thread is alive (every pool is joined before a command returns: a safety net)."""
    if sys.getprofile() is not None or sys.gettrace() is not None:
        return
    threading = sys.modules.get("threading")
    if threading is not None and threading.active_count() > 1:
        return
    import atexit

    atexit._run_exitfuncs()
    try:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:  # None: started closed (``>&-``), nothing was written there
                stream.flush()
    except (OSError, ValueError):
        code = code or 1  # e.g. a closed pipe: the output was not all written
    os._exit(code)
