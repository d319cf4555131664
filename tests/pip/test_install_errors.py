"""``kea pip install`` refuses bad input with one line (and a hint), never a traceback."""

from __future__ import annotations

from pathlib import Path

from tests.pip.conftest import Kea


def assert_one_error(stderr: str) -> list[str]:
    lines = stderr.splitlines()
    assert "Traceback" not in stderr
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1, stderr
    return lines


def test_malformed_requirement_reports_column(kea: Kea, tmp_path: Path) -> None:
    venv = kea.venv(tmp_path / "v")
    r = kea("pip", "install", "foo>=>1", venv=venv)
    assert r.returncode == 1
    lines = assert_one_error(r.stderr)
    assert lines[0] == (
        "error: invalid requirement 'foo>=>1' (command line, column 4): "
        "expected semicolon (after name with no version specifier) or end"
    )
    assert lines[1].startswith("hint: a requirement looks like")


def test_malformed_requirement_in_file_reports_file_line_column(kea: Kea, tmp_path: Path) -> None:
    venv = kea.venv(tmp_path / "v")
    req = kea.cwd / "requirements.txt"
    req.write_text("requests\n# pinned\nfoo>=>1\n")
    r = kea("pip", "install", "-r", "requirements.txt", venv=venv)
    assert r.returncode == 1
    lines = assert_one_error(r.stderr)
    assert "(requirements.txt:3, column 4)" in lines[0]


def test_missing_requirements_file(kea: Kea, tmp_path: Path) -> None:
    venv = kea.venv(tmp_path / "v")
    r = kea("pip", "install", "-r", "nope.txt", venv=venv)
    assert r.returncode == 1
    lines = assert_one_error(r.stderr)
    assert lines[0] == "error: requirements file not found: nope.txt"
    (kea.cwd / "req.txt").write_text("-r sub/missing.txt\n")
    r = kea("pip", "install", "-r", "req.txt", venv=venv)
    assert r.returncode == 1
    lines = assert_one_error(r.stderr)
    assert "requirements file not found:" in lines[0] and "sub/missing.txt" in lines[0]


def test_no_requirements_is_a_usage_error(kea: Kea, tmp_path: Path) -> None:
    venv = kea.venv(tmp_path / "v")
    r = kea("pip", "install", venv=venv)
    assert r.returncode == 2
    assert assert_one_error(r.stderr)[0] == "error: no requirements given"


def test_no_environment(kea: Kea) -> None:
    r = kea("pip", "install", "requests")
    assert r.returncode == 1
    assert assert_one_error(r.stderr)[0].startswith("error: No virtual environment found")


def test_editable_not_supported_yet(kea: Kea, tmp_path: Path) -> None:
    venv = kea.venv(tmp_path / "v")
    (kea.cwd / "proj").mkdir()
    r = kea("pip", "install", "-e", "./proj", venv=venv)
    assert r.returncode == 1
    assert assert_one_error(r.stderr)[0] == "error: editable installs are not supported yet: ./proj"


def test_sdist_path_not_supported_yet(kea: Kea, tmp_path: Path) -> None:
    venv = kea.venv(tmp_path / "v")
    (kea.cwd / "pkg-1.0.tar.gz").write_bytes(b"")
    r = kea("pip", "install", "./pkg-1.0.tar.gz", venv=venv)
    assert r.returncode == 1
    line = assert_one_error(r.stderr)[0]
    assert line.startswith("error: building from source is not supported yet: pkg-1.0.tar.gz")


def test_require_hashes_without_hash(kea: Kea, tmp_path: Path) -> None:
    venv = kea.venv(tmp_path / "v")
    (kea.cwd / "req.txt").write_text("requests==2.32.3\n")
    r = kea("pip", "install", "--require-hashes", "-r", "req.txt", venv=venv)
    assert r.returncode == 1
    line = assert_one_error(r.stderr)[0]
    assert "every requirement needs a --hash: 'requests==2.32.3' (req.txt:1)" in line


def test_unknown_option_is_usage_error(kea: Kea, tmp_path: Path) -> None:
    r = kea("pip", "install", "--frobnicate", "x")
    assert r.returncode == 2
    assert "No such option '--frobnicate'" in assert_one_error(r.stderr)[0]


def test_bad_exclude_newer_is_usage_error(kea: Kea, tmp_path: Path) -> None:
    venv = kea.venv(tmp_path / "v")
    r = kea("pip", "install", "--exclude-newer", "last tuesday", "requests", venv=venv)
    assert r.returncode == 2
    lines = assert_one_error(r.stderr)
    assert lines[0] == "error: invalid --exclude-newer value 'last tuesday'"


def test_unreachable_index_is_one_line_without_secret(kea: Kea, tmp_path: Path) -> None:
    import socket

    venv = kea.venv(tmp_path / "v")
    with socket.socket() as s:  # a loopback port with nobody listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    kea.env["KEA_HTTP_RETRIES"] = "0"
    url = f"http://alice:hunter2@127.0.0.1:{port}/simple"
    r = kea("pip", "install", "-v", "-i", url, "requests", venv=venv)
    assert r.returncode == 1
    assert "hunter2" not in r.stderr + r.stdout
    errors = [line for line in r.lines if line.startswith("error: ")]
    assert len(errors) == 1 and f"127.0.0.1:{port}" in errors[0]
