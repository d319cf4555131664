"""kea's loggers, which import ``logging`` only when a record may be written.

A warm ``kea pip install`` at the default verbosity writes no log record, yet importing
``logging`` (and ``traceback``, ``string``, ``weakref`` with it) cost it ~3.5 ms. ``get(name)``
answers a ``Logger`` with the methods kea calls. While ``logging`` is not imported, a record below
the threshold that ``kea.cli.output.setup_logging`` set (WARNING, logging's own default, until it
is called) is dropped here; any other record first runs the configuration that setup deferred
(``defer``/``ensure``), then goes to the stdlib logger of the same name, which decides as usual.
Once ``logging`` is imported by anyone (aiohttp, asyncio, a test's ``caplog``), every record goes
there.

A deferred configuration must run before code that logs through ``logging`` itself (asyncio,
aiohttp): ``ensure()``. Stdlib only, and nothing that is not loaded at start-up.
"""

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

TRACE, DEBUG, INFO, WARNING, ERROR = 5, 10, 20, 30, 40

_threshold = WARNING
_pending: "Callable[[], None] | None" = None


def defer(threshold: int, configure: "Callable[[], None]") -> None:
    """Drop kea's records below ``threshold`` without ``logging``; run ``configure`` before the
    first record that is not dropped (or at ``ensure()``)."""
    global _threshold, _pending
    _threshold = threshold
    _pending = configure


def ensure() -> None:
    """Run the configuration ``defer`` left, if any: before code that logs by itself."""
    global _pending
    configure, _pending = _pending, None
    if configure is not None:
        configure()


def _emitter(level: int) -> "Callable[..., None]":
    """A ``Logger`` method writing at ``level`` (``debug``, ``info``...)."""

    def emit(self: "Logger", msg: object, *args: object, **kwargs: "Any") -> None:
        kwargs.setdefault("stacklevel", 3)
        self.log(level, msg, *args, **kwargs)

    return emit


class Logger:
    """The part of ``logging.Logger`` that kea uses, for the stdlib logger of the same name."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def isEnabledFor(self, level: int) -> bool:
        logging = sys.modules.get("logging")
        if logging is None:
            return level >= _threshold
        return bool(logging.getLogger(self.name).isEnabledFor(level))

    def log(self, level: int, msg: object, *args: object, **kwargs: "Any") -> None:
        if level < _threshold and "logging" not in sys.modules:
            return
        ensure()
        import logging

        kwargs.setdefault("stacklevel", 2)
        logging.getLogger(self.name).log(level, msg, *args, **kwargs)

    debug = _emitter(DEBUG)
    info = _emitter(INFO)
    warning = _emitter(WARNING)
    error = _emitter(ERROR)


def get(name: str) -> Logger:
    """The logger called ``name`` (a ``kea.*`` name)."""
    return Logger(name)
