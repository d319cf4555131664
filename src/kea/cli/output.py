"""How kea talks to the terminal: errors, hints, warnings and logging, all redacted.

Every line kea writes to stderr goes through ``redact_text`` here, whatever the caller already did:
no password, token or signature reaches the terminal at any verbosity.

Colour (uv's): ``error:`` red bold, ``warning:`` yellow bold, ``hint:`` cyan bold, `` + `` green
and `` - `` red on change lines, summary lines dimmed. ``--color auto|always|never`` decides (see
``color_enabled``); colour codes are added only *after* a line is redacted and never change its
text, so redaction sees exactly what a colourless run prints.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from typing import Any

from kea import log as kea_log
from kea.auth.redact import redact_text
from kea.errors import KeaError

TRACE = kea_log.TRACE

_warned: set[str] = set()

# -- colour ----------------------------------------------------------------------------------------

_RESET = "\x1b[0m"
_STYLES = {
    "error": "\x1b[1;31m",
    "warning": "\x1b[1;33m",
    "hint": "\x1b[1;36m",
    "add": "\x1b[1;32m",
    "remove": "\x1b[1;31m",
    "bold": "\x1b[1m",
    "dim": "\x1b[2m",
}
_CHANGE_RE = re.compile(r"^( [+-] )([^=\s]+)(==\S+)?$")
_COUNT_RE = re.compile(r"\b(\d+ packages?)\b")
_SUMMARY_WORDS = (
    "Resolved", "Prepared", "Installed", "Uninstalled", "Audited", "Would download",
    "Would uninstall", "Would install",
)  # fmt: skip

_color_mode = "auto"
_color: bool | None = None  # decided on first use, after --color is known


def color_enabled(
    mode: str, *, env: dict[str, str] | None = None, isatty: bool | None = None
) -> bool:
    """Whether stderr gets colour: ``always``/``never`` as said; ``auto`` follows the conventions.

    ``auto``: no colour when ``NO_COLOR`` is set (non-empty); colour when ``FORCE_COLOR`` or
    ``CLICOLOR_FORCE`` is set (non-empty, not ``0``); else colour only on a terminal that is not
    ``TERM=dumb``. An explicit ``--color always|never`` overrides the environment.
    """
    if mode == "always":
        return True
    if mode == "never":
        return False
    env = dict(os.environ) if env is None else env
    if env.get("NO_COLOR"):
        return False
    if any(env.get(k, "") not in ("", "0") for k in ("FORCE_COLOR", "CLICOLOR_FORCE")):
        return True
    if isatty is None:
        try:
            isatty = sys.stderr.isatty()
        except (AttributeError, ValueError):
            isatty = False
    return isatty and env.get("TERM") != "dumb"


def set_color(mode: str) -> None:
    """Set the ``--color`` mode (``auto``, ``always``, ``never``) for the rest of the run."""
    global _color_mode, _color
    _color_mode = mode
    _color = None


def use_color() -> bool:
    """Whether this run colours its output (``--color``, the environment, the terminal)."""
    global _color
    if _color is None:
        _color = color_enabled(_color_mode)
    return _color


COLOR_MODES: tuple[str, ...] = ("auto", "always", "never")  # --color


def _early_color(args: list[str]) -> None:
    """Honour ``--color`` for errors raised before a command reads its settings (bad options,
    bad requirements): the last well-formed ``--color X`` / ``--color=X`` before ``--``."""
    for i, arg in enumerate(args):
        if arg == "--":
            break
        value = args[i + 1] if arg == "--color" and i + 1 < len(args) else None
        if arg.startswith("--color="):
            value = arg.partition("=")[2]
        if value in COLOR_MODES:
            set_color(value)


def _paint(text: str, style: str) -> str:
    return f"{_STYLES[style]}{text}{_RESET}" if text else text


def _colorize(line: str, kind: str) -> str:
    """``line`` (already redacted) with colour codes around parts of it; the text is unchanged."""
    if kind in ("error", "warning", "hint"):
        head, sep, rest = line.partition(":")
        return _paint(head + sep, kind) + rest
    if kind != "info":
        return line
    m = _CHANGE_RE.match(line)
    if m:
        sign = _paint(m.group(1)[1], "add" if m.group(1)[1] == "+" else "remove")
        return f" {sign} {_paint(m.group(2), 'bold')}{_paint(m.group(3) or '', 'dim')}"
    if line.startswith(_SUMMARY_WORDS):
        parts = _COUNT_RE.split(line)  # odd indexes: the "N packages" counts
        body = "".join(
            f"{_RESET}{_paint(p, 'bold')}{_STYLES['dim']}" if i % 2 else p
            for i, p in enumerate(parts)
        )
        return _paint(body, "dim")
    return line


def _write(line: str, kind: str = "plain") -> None:
    text = redact_text(line)
    if use_color():
        # the kind's prefix is on the first line; later lines of a message are plain text
        first, nl, rest = text.partition("\n")
        more = [_colorize(p, kind) for p in rest.split("\n")] if kind == "info" and nl else [rest]
        text = _colorize(first, kind) + nl + ("\n".join(more) if nl else "")
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def error(message: str, hint: str | None = None) -> None:
    _write(f"error: {message}", "error")
    if hint:
        _write(f"hint: {hint}", "hint")


def warn(message: str, *, once: bool = True) -> None:
    """A ``warning:`` line; with ``once`` the same text is printed only once per run."""
    if once:
        if message in _warned:
            return
        _warned.add(message)
    _write(f"warning: {message}", "warning")


def info(message: str) -> None:
    """A status line (uv-style summary) on stderr, silenced by -q."""
    if _quiet:
        return
    _write(message, "info")


_quiet = False


def setup_logging(verbosity: int, quiet: int = 0, *, defer: bool = False) -> None:
    """-v: kea debug; -vv: kea trace; -vvv: trace including aiohttp and asyncio.

    ``defer``: at the default verbosity, configure ``logging`` only when a record is written
    or ``kea.log.ensure()`` is called (``kea.log``); a warm install writes none."""
    global _quiet
    _quiet = quiet > 0
    threshold = TRACE if verbosity >= 2 else kea_log.DEBUG if verbosity == 1 else kea_log.WARNING
    kea_log.defer(threshold, lambda: _configure_logging(verbosity))
    if not defer or verbosity > 0:
        kea_log.ensure()


def _configure_logging(verbosity: int) -> None:
    import logging

    class RedactingFormatter(logging.Formatter):
        def format(self, record: logging.LogRecord) -> str:
            return redact_text(super().format(record))

    logging.addLevelName(TRACE, "TRACE")
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


def run_cli(group: Any, args: list[str], *, quick_exit: bool = False) -> None:
    """Run the click group on ``args`` under ``run_guarded``."""
    run_guarded(lambda: group.main(args=args, prog_name="kea", standalone_mode=False), args,
                quick_exit=quick_exit)  # fmt: skip


def run_guarded(call: Callable[[], object], args: list[str], *, quick_exit: bool = False) -> None:
    """Run a command (``call``); turn every failure into one redacted line and an exit code.

    click's own exceptions are told apart only when click is loaded: ``kea pip install`` may run
    without it (``kea.cli.flags``). ``quick_exit``: end the process with ``_quick_exit`` after a
    success or a ``KeaError`` (the console script does; tests that call ``main(argv)``
    in-process do not)."""
    _early_color(args)
    try:
        call()
    except KeaError as e:
        error(e.message, e.hint)
        if quick_exit:
            _quick_exit(e.exit_code)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        _write("error: interrupted", "error")
        sys.exit(130)
    except EOFError:  # input closed at a prompt: what click makes of it (Abort)
        _write("error: aborted", "error")
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(1)
    except Exception as e:
        _click_failure(e)
        # a bug: still one redacted line, a traceback only when asked
        if kea_log.get("kea").isEnabledFor(kea_log.DEBUG):
            import traceback

            _write("".join(traceback.format_exception(e)))
        error(f"unexpected {type(e).__name__}: {e}", "this is a bug in kea; rerun with -v")
        sys.exit(2)
    if quick_exit:
        _quick_exit(0)
    sys.exit(0)


def _click_failure(e: Exception) -> None:
    """Exit as click's exception ``e`` asks (its usage errors as one line); return if ``e`` is
    not one of click's."""
    click = sys.modules.get("click")
    if click is None:
        return
    if isinstance(e, click.exceptions.Exit):
        sys.exit(e.exit_code)
    if isinstance(e, click.exceptions.Abort):  # click's Ctrl-C or closed input
        ctrl_c = isinstance(e.__cause__, KeyboardInterrupt)
        _write("error: interrupted" if ctrl_c else "error: aborted", "error")
        sys.exit(130)
    if isinstance(e, click.ClickException):
        error(e.format_message(), "run with --help to see the options")
        sys.exit(2)


def _quick_exit(code: int) -> None:
    """End the finished command with ``code``. A Ctrl-C from here on neither prints a traceback
    nor cuts the atexit handlers short (a --no-cache run's temporary cache is removed there):
    SIGINT is ignored, and one that lands just before that is swallowed."""
    try:
        import signal

        signal.signal(signal.SIGINT, signal.SIG_IGN)
        from kea.cli.exit import quick_exit

        quick_exit(code)  # returns under a profiler or tracer, or with another thread alive
    except KeyboardInterrupt:
        pass
    sys.exit(code)
