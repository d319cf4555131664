import subprocess
import sys

from kea import __version__


def test_version() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "kea", "--version"], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == f"kea {__version__}"


def test_version_does_not_import_heavy_modules() -> None:
    code = (
        "import sys\n"
        "from kea.cli import main as m\n"
        "try:\n    m.main(['--version'])\nexcept SystemExit:\n    pass\n"
        "bad = [n for n in ('aiohttp', 'rich', 'click', 'typing', 'logging') if n in sys.modules]\n"
        "print('heavy=' + ','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines()[-1] == "heavy="


def test_unknown_command_is_usage_error() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "kea", "frobnicate"], capture_output=True, text=True
    )
    assert out.returncode == 2
    assert out.stderr.startswith("error: ")
    assert "Traceback" not in out.stderr


# The console script's main() (argv from sys.argv), run after a probe has set up its report:
# atexit handlers run before kea's quick exit.
AS_CONSOLE_SCRIPT = "from kea.cli.main import main\nsys.argv = ['kea', *sys.argv[1:]]\nmain()\n"


def _last_line_of(probe: str, *args: str) -> str:
    """The last line a probe printed, once the kea command it ran with ``args`` succeeded."""
    out = subprocess.run([sys.executable, "-c", probe, *args],
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert out.returncode == 0, out.stderr
    return out.stdout.splitlines()[-1]


# Reports the GC thresholds the command left.
GC_PROBE = (
    "import atexit, gc, os, sys\n"
    "atexit.register(lambda: os.write(1, repr(gc.get_threshold()).encode() + b'\\n'))\n"
) + AS_CONSOLE_SCRIPT


def test_short_lived_commands_raise_the_gc_threshold_serve_keeps_it() -> None:
    from kea.cli.main import GC_THRESHOLD

    assert _last_line_of(GC_PROBE, "cache", "dir") == repr(GC_THRESHOLD)
    import gc

    # serve keeps what this process has: the default.
    assert _last_line_of(GC_PROBE, "serve", "--help") == repr(gc.get_threshold())


MSGSPEC_PROBE = (
    "import atexit, os, sys\n"
    "def report():\n"
    "    import msgspec\n"
    "    import msgspec._utils as u\n"
    "    import typing_extensions\n"  # still importable once msgspec is in
    "    class S(msgspec.Struct):\n"
    "        a: 'list[str] | None' = None\n"
    '    s = msgspec.json.decode(b\'{"a": ["x"]}\', type=S)\n'
    "    os.write(1, f'{u._get_type_hints.__module__} {s.a}\\n'.encode())\n"
    "atexit.register(report)\n"
) + AS_CONSOLE_SCRIPT


def test_commands_import_msgspec_without_typing_extensions() -> None:
    assert _last_line_of(MSGSPEC_PROBE, "cache", "dir") == "typing ['x']"
