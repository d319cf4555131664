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
