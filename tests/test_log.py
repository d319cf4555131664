"""kea.log: kea's loggers import ``logging`` only for a record that may be written, and every
record still reaches the redacting handler of ``kea.cli.output.setup_logging``."""

from __future__ import annotations

import subprocess
import sys

SECRET = "http://alice:s3cret-pass@idx.example/simple/"


def _run(code: str) -> subprocess.CompletedProcess[str]:
    prelude = "import sys\nfrom kea import log\nfrom kea.cli.output import setup_logging\n"
    return subprocess.run(
        [sys.executable, "-c", prelude + code], capture_output=True, text=True, check=True
    )


def _check(code: str, stdout: list[str], stderr: str) -> None:
    out = _run(code)
    assert out.stdout.split() == stdout
    assert out.stderr == stderr


def test_a_dropped_record_never_imports_logging() -> None:
    code = (
        "setup_logging(0, defer=True)\n"
        "x = log.get('kea.x')\n"
        "x.debug('not shown %s', 1)\n"
        "x.log(log.TRACE, 'nor this')\n"
        "print(x.isEnabledFor(log.DEBUG), x.isEnabledFor(log.WARNING), 'logging' in sys.modules)\n"
    )
    _check(code, ["False", "True", "False"], "")


def test_a_written_record_configures_logging_first_and_is_redacted() -> None:
    out = _run(
        "setup_logging(0, defer=True)\n"
        f"log.get('kea.x').warning('index %s down', {SECRET!r})\n"
        "import logging\n"
        "print(len(logging.getLogger().handlers), logging.getLogger('kea').level)\n"
    )
    assert out.stdout.split() == ["1", "30"]
    assert out.stderr.startswith("WARNING kea.x: index http://alice:")
    assert "s3cret" not in out.stderr


def test_verbose_runs_configure_at_once() -> None:
    code = (
        "setup_logging(1, defer=True)\n"
        "print('logging' in sys.modules)\n"
        "log.get('kea.x').debug('seen %d', 7)\n"
    )
    _check(code, ["True"], "DEBUG kea.x: seen 7\n")


def test_third_party_records_after_ensure_are_redacted() -> None:
    """asyncio and aiohttp log through ``logging`` itself: once ``ensure()`` ran (before the
    event loop starts), their records go through kea's redacting handler too."""
    out = _run(
        "setup_logging(0, defer=True)\n"
        "log.ensure()\n"
        "import logging\n"
        f"logging.getLogger('asyncio').error('Task exception: %s', {SECRET!r})\n"
    )
    assert out.stderr.startswith("ERROR asyncio: Task exception: http://alice:")
    assert "s3cret" not in out.stderr


def test_once_logging_is_loaded_its_levels_decide() -> None:
    code = (
        "setup_logging(0, defer=True)\n"
        "import logging\n"
        "logging.getLogger('kea.x').setLevel(logging.DEBUG)\n"
        "x = log.get('kea.x')\n"
        "print(x.isEnabledFor(log.DEBUG))\n"
        "x.debug('now shown')\n"
    )
    _check(code, ["True"], "DEBUG kea.x: now shown\n")
