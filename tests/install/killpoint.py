"""Fault injection for the kill tests, from the test side: Python source that, run in a child
process before it installs, makes the install transaction die by SIGKILL at a chosen rename
(or get a Ctrl-C there, ``CTRL_C_AT_RENAME``).

The child dies where a crash hurts most: its journal already names the rename, the rename itself
is not done. ``KILL_AT_RENAME`` reads the rename's index (0 = the first) from the environment
variable ``KILL_AFTER``, and patches nothing when it is unset.
"""

KILL_AFTER = "KEA_TEST_KILL_AFTER_RENAMES"

KILL_AT_RENAME = f"""
import os as _os, signal as _signal
if _os.environ.get({KILL_AFTER!r}, "").isdigit():
    from kea.install.transaction import EnvTransaction as _T

    _after, _done, _mv = int(_os.environ[{KILL_AFTER!r}]), [0], _T._mv

    def _dying_mv(self, name, src, dst):
        if _done[0] >= _after:
            self._journal.add(name, ["mv", src, dst])
            _os.kill(_os.getpid(), _signal.SIGKILL)
        _done[0] += 1
        _mv(self, name, src, dst)

    _T._mv = _dying_mv
"""

CTRL_C_AFTER = "KEA_TEST_CTRL_C_AFTER_RENAMES"

# Ctrl-C at chosen renames ("5" or "5,30": one SIGINT at each): the process sends itself
# SIGINT there, and the rename goes on (as it would when the signal came a moment later).
# Patches nothing when the variable is unset.
CTRL_C_AT_RENAME = f"""
import os as _os, signal as _signal
if _os.environ.get({CTRL_C_AFTER!r}, ""):
    from kea.install.transaction import EnvTransaction as _T

    _at = {{int(n) for n in _os.environ[{CTRL_C_AFTER!r}].split(",")}}
    _done, _mv = [0], _T._mv

    def _mv_then_ctrl_c(self, name, src, dst):
        if _done[0] in _at:
            _os.kill(_os.getpid(), _signal.SIGINT)
        _done[0] += 1
        _mv(self, name, src, dst)

    _T._mv = _mv_then_ctrl_c
"""

CTRL_C_STAGING = "KEA_TEST_CTRL_C_WHILE_STAGING"

# A Ctrl-C as the install starts staging (linking files under .kea-staging), before any commit.
CTRL_C_AT_STAGING = f"""
import os as _os, signal as _signal
if _os.environ.get({CTRL_C_STAGING!r}, ""):
    import kea.install.installer as _inst

    _stages = _inst.run_stages

    def _ctrl_c_then_stage(*args, **kwargs):
        _os.kill(_os.getpid(), _signal.SIGINT)
        return _stages(*args, **kwargs)

    _inst.run_stages = _ctrl_c_then_stage
"""

_MAIN = """
import sys
sys.argv[0] = "kea"
from kea.cli.main import main
main()
"""

# ``kea`` itself, as ``python -m kea`` runs it, after KILL_AT_RENAME: ``python -c CLI args...``.
CLI = KILL_AT_RENAME + CTRL_C_AT_RENAME + CTRL_C_AT_STAGING + _MAIN
