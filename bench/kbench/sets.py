"""The requirement sets: inputs (``sets/<name>.in``), pins resolved once (``sets/<name>.txt``,
committed), and the wheels fetched once from PyPI into ``work/wheels``.

``boto3`` is the backtracking set: its index also carries the newest boto3/botocore releases
(listed in ``sets/boto3.decoys.txt``) so that resolvers walk back through real metadata.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from kbench import SETS_DIR, WORK

PYPI = "https://pypi.org/simple"


@dataclass(frozen=True)
class BenchSet:
    name: str
    about: str
    decoys: dict[str, int]  # project -> how many newer releases to serve beside the pin


SETS: dict[str, BenchSet] = {
    s.name: s
    for s in (
        BenchSet("black", "black (~8 packages)", {}),
        BenchSet("trio", "trio's docs requirements (~38 packages)", {}),
        BenchSet("jupyter", "jupyter (~95 packages)", {}),
        BenchSet("boto3", "backtracking: urllib3<1.25.4 + boto3", {"boto3": 10, "botocore": 10}),
        BenchSet("large", "a large set (>= 250 packages)", {}),
    )
}
QUICK_SETS = ("black", "trio")


def normalize(name: str) -> str:
    """PEP 503 normalized project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


_PIN = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?\s*==\s*([^\s;#]+)")


def parse_pins(text: str) -> dict[str, str]:
    """``name==version`` lines of a compiled requirements file -> {normalized name: version}."""
    pins: dict[str, str] = {}
    for line in text.splitlines():
        m = _PIN.match(line)
        if m:
            pins[normalize(m.group(1))] = m.group(2)
    return pins


def wheel_name_version(filename: str) -> tuple[str, str] | None:
    """(normalized project, version) of a wheel file name, or None if it is not a wheel."""
    if not filename.endswith(".whl"):
        return None
    parts = filename[:-4].split("-")
    if len(parts) not in (5, 6):
        return None
    return normalize(parts[0]), parts[1]


def files_for_pins(pins: dict[str, str], filenames: list[str]) -> tuple[list[str], list[str]]:
    """Wheel files (one per pin, sorted) among ``filenames``, and the pins that have none."""
    by_key: dict[tuple[str, str], str] = {}
    for f in sorted(filenames):
        key = wheel_name_version(f)
        if key is not None:
            by_key.setdefault(key, f)
    found: list[str] = []
    missing: list[str] = []
    for name, version in sorted(pins.items()):
        hit = by_key.get((name, version))
        if hit is None:
            missing.append(f"{name}=={version}")
        else:
            found.append(hit)
    return found, missing


def pypi_env() -> dict[str, str]:
    """The environment for talking to PyPI: no local pip config or find-links."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_"))}
    env["PIP_CONFIG_FILE"] = os.devnull
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["UV_NO_CONFIG"] = "1"
    if os.path.exists("/etc/ssl/certs/ca-certificates.crt"):
        env["PIP_CERT"] = "/etc/ssl/certs/ca-certificates.crt"
        env["SSL_CERT_FILE"] = "/etc/ssl/certs/ca-certificates.crt"
    return env


def paths(name: str) -> tuple[Path, Path, Path]:
    return SETS_DIR / f"{name}.in", SETS_DIR / f"{name}.txt", SETS_DIR / f"{name}.decoys.txt"


def compile_set(name: str, uv: Path, python: str) -> None:
    """Resolve ``<name>.in`` against PyPI once (wheels only) into ``<name>.txt`` (+ decoys)."""
    src, out, decoys_file = paths(name)
    cmd = [str(uv), "pip", "compile", "--quiet", "--only-binary", ":all:", "--python", python]
    cmd += ["--no-header", "--no-annotate", "--index-url", PYPI, str(src), "-o", str(out)]
    subprocess.run(cmd, check=True, env=pypi_env())
    decoys = SETS[name].decoys
    if decoys:
        pins = parse_pins(out.read_text())
        lines = []
        for project, count in decoys.items():
            for v in newer_versions(project, pins[project], count):
                lines.append(f"{project}=={v}")
        decoys_file.write_text("".join(line + "\n" for line in lines))


def newer_versions(project: str, pinned: str, count: int) -> list[str]:
    """The ``count`` newest releases of ``project`` on PyPI newer than ``pinned``."""
    from packaging.version import Version

    r = subprocess.run(
        [sys.executable, "-m", "pip", "index", "versions", project, "--index-url", PYPI],
        check=True,
        capture_output=True,
        text=True,
        env=pypi_env(),
    )
    m = re.search(r"Available versions:\s*(.+)", r.stdout)
    if not m:
        raise RuntimeError(f"no versions listed for {project}")
    versions = [Version(v.strip()) for v in m.group(1).split(",")]
    newer = sorted(
        (v for v in versions if not v.is_prerelease and v > Version(pinned)), reverse=True
    )
    return [str(v) for v in newer[:count]]


def set_pins(name: str) -> dict[str, str]:
    return parse_pins(paths(name)[1].read_text())


def decoy_pins(name: str) -> list[tuple[str, str]]:
    f = paths(name)[2]
    if not f.exists():
        return []
    return [(normalize(n), v) for n, v in (ln.split("==") for ln in f.read_text().split())]


def wheels_dir() -> Path:
    return WORK / "wheels"


def fetch_wheels(name: str) -> list[str]:
    """Download (once) the wheels of a set and its decoys; return the file names it uses."""
    dest = wheels_dir()
    dest.mkdir(parents=True, exist_ok=True)
    _, txt, _ = paths(name)
    pins = set_pins(name)
    decoys = decoy_pins(name)
    marker = dest / f".set-{name}.json"
    want = {"pins": pins, "decoys": decoys}
    try:
        rec = json.loads(marker.read_text())
        if rec["want"] == want and all((dest / f).is_file() for f in rec["files"]):
            return list(rec["files"])
    except (OSError, ValueError, KeyError):
        pass
    base = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary", ":all:"]
    base += ["--index-url", PYPI, "-d", str(dest)]
    found, missing = files_for_pins(pins, os.listdir(dest))
    if missing:
        subprocess.run([*base, "-r", str(txt)], check=True, env=pypi_env())
    for project, version in decoys:
        have = any(wheel_name_version(f) == (project, version) for f in os.listdir(dest))
        if not have:
            subprocess.run([*base, f"{project}=={version}"], check=True, env=pypi_env())
    listing = os.listdir(dest)
    found, missing = files_for_pins(pins, listing)
    if missing:
        raise RuntimeError(f"set {name}: no wheel fetched for {', '.join(missing)}")
    extra = [f for f in sorted(listing) if wheel_name_version(f) in set(decoys)]
    files = sorted(set(found) | set(extra))
    marker.write_text(json.dumps({"want": want, "files": files}, indent=1))
    return files
