"""Assertions the cases share."""

from __future__ import annotations

import hashlib
from typing import Any

from tests.e2e.harness import Run
from tests.e2e.servers.record import Seen, describe


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def no_traceback(run: Run) -> None:
    assert "Traceback" not in run.output, run


def failed_cleanly(run: Run) -> None:
    """Exit ≠ 0 with an ``error:`` line and no traceback."""
    assert run.returncode != 0, run
    assert "error:" in run.stderr, run
    no_traceback(run)


def ok_run(run: Run) -> None:
    assert run.returncode == 0, run
    no_traceback(run)


def no_authorization(seen: list[Seen]) -> None:
    carried = [s for s in seen if s.authorization or s.proxy_authorization]
    assert not carried, "credentials were sent where none belong:\n" + describe(carried)


def results_of(run: Run) -> list[dict[str, Any]]:
    assert isinstance(run.result, list), f"fetch_client printed no RESULT\n{run}"
    return run.result
