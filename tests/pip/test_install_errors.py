"""``kea pip install`` refuses bad input with one line (and a hint), never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.pip.conftest import Kea
from tests.pip.server import SimpleIndex
from tests.pip.wheelmaker import build_wheel


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


def test_an_empty_requirements_file_installs_nothing_and_says_so(kea: Kea, tmp_path: Path) -> None:
    """It was "error: no requirements given" (exit 2); uv warns and exits 0, and so do
    scripts that install from a generated file that may be empty."""
    venv = kea.venv(tmp_path / "v")
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing pinned yet\n")
    r = kea("pip", "install", "-r", str(empty), venv=venv)
    assert r.returncode == 0, r.stderr
    assert f"warning: requirements file {empty} does not name any package" in r.stderr
    assert "error" not in r.stderr


def test_no_index_without_find_links_says_where_to_look(kea: Kea, tmp_path: Path) -> None:
    """ "not found in the package registry" with --no-index and no -f: kea looked nowhere;
    the error now says so (found by a black-box audit)."""
    venv = kea.venv(tmp_path / "v")
    r = kea("pip", "install", "--no-index", "anything", venv=venv)
    assert r.returncode == 1, r.stderr
    assert "hint: no index and no --find-links: pass --find-links DIR (or drop --no-index)" in (
        r.stderr.splitlines()
    ), r.stderr


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


def test_damaged_cached_archive_names_the_package_and_the_repair(
    kea: Kea, small_index: SimpleIndex, tmp_path: Path
) -> None:
    """A file deleted from the unpacked copy of a wheel in the cache: the install stops with
    one line naming the package and the missing file, and a hint with the exact command that
    removes the copy; nothing is installed, and following the hint makes the next run work."""
    build_wheel(small_index.directory, "lib", "1.0", files={"lib/__init__.py": "", "lib/a.py": ""})
    build_wheel(small_index.directory, "app", "1.0", requires=["lib"])
    small_index.scan()
    first = kea("pip", "install", "-i", small_index.url, "app", venv=kea.venv(tmp_path / "a"))
    assert first.returncode == 0, first.stderr
    cache = Path(kea.env["KEA_CACHE_DIR"])
    (gone,) = cache.glob("archive-v*/*/lib/a.py")
    gone.unlink()

    venv = kea.venv(tmp_path / "b")
    r = kea("pip", "install", "-i", small_index.url, "app", venv=venv)
    assert r.returncode == 1
    lines = assert_one_error(r.stderr)
    error = next(line for line in lines if line.startswith("error: "))
    damaged = "the cached copy of lib 1.0 is damaged"
    assert error == f"error: {damaged}: lib/a.py is missing from {gone.parent.parent}"
    hint = lines[lines.index(error) + 1]
    repair = f"kea cache clean lib --cache-dir {cache}"
    assert hint == f"hint: remove it with `{repair}`, then run the command again"
    site = next((venv / "lib").glob("python3*/site-packages"))
    assert not list(site.glob("*.dist-info")) and not (site / "lib").exists()

    cleaned = kea("cache", "clean", "lib", "--cache-dir", str(cache))
    assert cleaned.returncode == 0, cleaned.stderr
    again = kea("pip", "install", "-i", small_index.url, "app", venv=venv)
    assert again.returncode == 0, again.stderr
    assert (site / "lib" / "a.py").is_file()


def test_a_version_left_out_by_platform_tags_gets_a_hint(kea: Kea, tmp_path: Path) -> None:
    """mixed 2.0 exists, but only as a macOS wheel; 1.0 is usable. The explanation can only say
    that no version matches; the hint names the version, why it was left out, and its file."""
    links = tmp_path / "links"
    build_wheel(links, "mixed", "1.0")
    build_wheel(links, "mixed", "2.0", tag="cp311-cp311-macosx_11_0_arm64")
    venv = kea.venv(tmp_path / "v")
    for req in ("mixed==2.0", "mixed>=2"):
        r = kea("pip", "install", "--no-index", "--find-links", str(links), req, venv=venv)
        assert r.returncode == 1
        lines = assert_one_error(r.stderr)
        assert (
            "hint: mixed==2.0 has no wheel with a matching platform tag "
            "(mixed-2.0-cp311-cp311-macosx_11_0_arm64.whl)"
        ) in lines, r.stderr
    ok = kea("pip", "install", "--no-index", "--find-links", str(links), "mixed", venv=venv)
    assert ok.returncode == 0, ok.stderr
    assert " + mixed==1.0" in ok.lines


def test_a_wheel_whose_metadata_gives_another_version_is_refused(
    kea: Kea, small_index: SimpleIndex, tmp_path: Path
) -> None:
    """Installed, it was the metadata's version under the file's name, and every later run
    installed it again (the file's version was never there)."""
    wheel = build_wheel(small_index.directory, "mismatchv", "9.9")
    wheel.rename(wheel.with_name("mismatchv-1.0-py3-none-any.whl"))
    small_index.scan()
    venv = kea.venv(tmp_path / "v")
    r = kea("pip", "install", "-i", small_index.url, "mismatchv==1.0", venv=venv)
    assert r.returncode == 1
    assert_one_error(r.stderr)
    assert "mismatchv-1.0-py3-none-any.whl: its metadata gives the version 9.9, not 1.0" in r.stderr
    assert not list(venv.glob("lib/python3*/site-packages/mismatchv*"))


@pytest.mark.parametrize(
    ("python", "says"),
    [("/bin/true", "it printed nothing"), ("/bin/echo", "bad answer")],
)
def test_a_python_that_is_not_python_is_one_line_with_a_hint(
    kea: Kea, python: str, says: str
) -> None:
    r = kea("pip", "install", "--python", python, "six")
    assert r.returncode != 0
    lines = assert_one_error(r.stderr)
    assert f"cannot query Python interpreter {python}: {says}" in lines[0]
    assert any(line.startswith("hint: --python takes a Python 3 interpreter") for line in lines)
