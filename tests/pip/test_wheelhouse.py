"""Real wheels from PyPI (fetched once by scripts/fetch-wheelhouse), served on loopback,
installed by ``kea pip install`` into fresh venvs, then imported and their scripts run."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.pip.conftest import Kea, Result
from tests.pip.server import SimpleIndex

pytestmark = [pytest.mark.e2e, pytest.mark.wheelhouse]


def counts(r: Result) -> dict[str, int]:
    out = {}
    for line in r.lines:
        m = re.match(r"^(Resolved|Prepared|Installed|Audited) (\d+) packages? in ", line)
        if m:
            out[m.group(1)] = int(m.group(2))
    return out


def added(r: Result) -> set[str]:
    return {line[3:].split("==")[0] for line in r.lines if line.startswith(" + ")}


def run(venv: Path, *argv: str) -> str:
    exe = argv[0] if argv[0].startswith("/") else str(venv / "bin" / argv[0])
    proc = subprocess.run([exe, *argv[1:]], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, (argv, proc.stdout, proc.stderr)
    return proc.stdout + proc.stderr


def test_requests(kea: Kea, wheelhouse_index: SimpleIndex, tmp_path: Path) -> None:
    venv = kea.venv(tmp_path / "venv")
    r = kea("pip", "install", "-i", wheelhouse_index.url, "requests", venv=venv)
    assert r.returncode == 0, r.stderr
    assert added(r) == {"requests", "urllib3", "idna", "certifi", "charset-normalizer"}
    assert counts(r) == {"Resolved": 5, "Prepared": 5, "Installed": 5}
    out = run(
        venv,
        "python",
        "-c",
        "import requests, urllib3, idna, certifi, charset_normalizer;"
        "print(requests.__version__, requests.Session().headers['User-Agent'])",
    )
    assert "python-requests/" in out


def test_black_runs(kea: Kea, wheelhouse_index: SimpleIndex, tmp_path: Path) -> None:
    venv = kea.venv(tmp_path / "venv")
    r = kea("pip", "install", "-i", wheelhouse_index.url, "black", venv=venv)
    assert r.returncode == 0, r.stderr
    assert {"black", "click", "pathspec", "platformdirs", "packaging"} <= added(r)
    assert run(venv, "black", "--version").startswith("black, ")
    src = tmp_path / "ugly.py"
    src.write_text("x = {  'a':1 }\n")
    run(venv, "black", "-q", str(src))
    assert src.read_text() == 'x = {"a": 1}\n'


def test_jupyter_closure_then_noop_then_offline(
    kea: Kea, wheelhouse_index: SimpleIndex, tmp_path: Path
) -> None:
    venv = kea.venv(tmp_path / "venv")
    r = kea("pip", "install", "-i", wheelhouse_index.url, "jupyter", venv=venv, timeout=400)
    assert r.returncode == 0, r.stderr
    n = counts(r)["Resolved"]
    assert n >= 80, r.stderr
    assert counts(r) == {"Resolved": n, "Prepared": n, "Installed": n}
    versions = run(venv, "jupyter", "--version")
    for core in ("jupyter_client", "jupyter_server", "jupyterlab", "nbformat", "notebook"):
        line = next(ln for ln in versions.splitlines() if ln.startswith(core + " "))
        assert "not installed" not in line, versions
    run(
        venv,
        "python",
        "-c",
        "import notebook, jupyterlab, nbconvert, ipykernel, jupyter_server, zmq, yaml",
    )

    # Everything is installed: the second run audits the environment without any request.
    wheelhouse_index.requests.clear()
    again = kea("pip", "install", "-i", wheelhouse_index.url, "jupyter", venv=venv)
    assert again.returncode == 0, again.stderr
    assert counts(again) == {"Audited": n}
    assert wheelhouse_index.requests == []

    # A fresh venv from the warm cache with --offline: same set, no network.
    other = kea.venv(tmp_path / "other")
    r = kea("pip", "install", "--offline", "-i", wheelhouse_index.url, "jupyter", venv=other)
    assert r.returncode == 0, r.stderr
    assert counts(r)["Installed"] == n
    assert wheelhouse_index.requests == []
    run(other, "jupyter", "--version")
