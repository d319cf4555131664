"""How kea talks to the terminal: errors, hints, warnings and logging, all redacted.

Every line kea writes to stderr goes through ``redact_text`` here, whatever the caller already did:
no password, token or signature reaches the terminal at any verbosity.
"""

from __future__ import annotations

import logging
import sys
import traceback
from typing import Any

from kea.auth.redact import redact_text
from kea.errors import KeaError

TRACE = 5
logging.addLevelName(TRACE, "TRACE")

_warned: set[str] = set()


def _write(line: str) -> None:
    sys.stderr.write(redact_text(line) + "\n")
    sys.stderr.flush()


def error(message: str, hint: str | None = None) -> None:
    _write(f"error: {message}")
    if hint:
        _write(f"hint: {hint}")


def warn(message: str, *, once: bool = True) -> None:
    """A ``warning:`` line; with ``once`` the same text is printed only once per run."""
    if once:
        if message in _warned:
            return
        _warned.add(message)
    _write(f"warning: {message}")


def info(message: str) -> None:
    """A status line (uv-style summary) on stderr, silenced by -q."""
    if _quiet:
        return
    _write(message)


_quiet = False


class RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact_text(super().format(record))


def setup_logging(verbosity: int, quiet: int = 0) -> None:
    """-v: kea debug; -vv: kea trace; -vvv: trace including aiohttp and asyncio."""
    global _quiet
    _quiet = quiet > 0
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(RedactingFormatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(handler)
    kea_logger = logging.getLogger("kea")
    if verbosity >= 2:
        kea_logger.setLevel(TRACE)
    elif verbosity == 1:
        kea_logger.setLevel(logging.DEBUG)
    else:
        kea_logger.setLevel(logging.WARNING)
    root.setLevel(TRACE if verbosity >= 3 else logging.WARNING)


def run_cli(group: Any, args: list[str]) -> None:
    """Run the click group; turn every failure into one redacted line and an exit code."""
    import click

    try:
        group.main(args=args, prog_name="kea", standalone_mode=False)
    except KeaError as e:
        error(e.message, e.hint)
        sys.exit(e.exit_code)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except click.exceptions.Abort:
        _write("error: aborted")
        sys.exit(130)
    except click.ClickException as e:
        error(e.format_message(), "run with --help to see the options")
        sys.exit(2)
    except KeyboardInterrupt:
        _write("error: interrupted")
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(1)
    except Exception as e:  # a bug: still one redacted line, a traceback only when asked
        if logging.getLogger("kea").isEnabledFor(logging.DEBUG):
            _write("".join(traceback.format_exception(e)))
        error(f"unexpected {type(e).__name__}: {e}", "this is a bug in kea; rerun with -v")
        sys.exit(2)
    sys.exit(0)
