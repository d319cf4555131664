from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from kea.dist.record import parse_record
from kea.errors import KeaError
from kea.install.installer import installed_dists, uninstall
from kea.install.link import Linker
from kea.install.plan import WantedDist, make_plan
from tests.install.helpers import archive, install, py, site_packages, target_of

DEMO = {
    "files": {
        "demo_pkg/__init__.py": "VALUE = 41\n",
        "demo_pkg/sub/__init__.py": "",
        "demo_pkg/sub/cli.py": "def main():\n    print('demo says hi')\n",
        "demo_top.py": "TOP = True\n",
    },
    "console_scripts": {"demo-cli": "demo_pkg.sub.cli:main"},
    "data": {
        "scripts/demo-raw": "#!python\nimport demo_pkg\nprint('raw', demo_pkg.VALUE)\n",
        "data/share/demo/readme.txt": "data file\n",
        "headers/demo.h": "int demo;\n",
    },
}


def test_install_import_scripts_and_uninstall(tmp_path: Path, venv: Path) -> None:
    target = target_of(venv, tmp_path / "cache")
    arch = archive(tmp_path, "demo-pkg", "1.0", **DEMO)
    report = install(target, WantedDist("demo-pkg", "1.0", arch))
    assert report.installed == [("demo-pkg", "1.0")]

    assert py(venv, "import demo_pkg, demo_top; print(demo_pkg.VALUE, demo_top.TOP)") == "41 True"
    assert py(venv, "import importlib.metadata as m; print(m.version('demo-pkg'))") == "1.0"
    out = subprocess.run([str(venv / "bin" / "demo-cli")], capture_output=True, text=True)
    assert out.stdout.strip() == "demo says hi"
    out = subprocess.run([str(venv / "bin" / "demo-raw")], capture_output=True, text=True)
    assert out.stdout.strip() == "raw 41"
    assert (venv / "share" / "demo" / "readme.txt").read_text() == "data file\n"
    assert next((venv / "include" / "site").glob("python3*/demo-pkg/demo.h")).is_file()

    sp = site_packages(venv)
    di = sp / "demo_pkg-1.0.dist-info"
    assert (di / "INSTALLER").read_text() == "kea\n"
    record = parse_record((di / "RECORD").read_text())
    paths = {e.path for e in record}
    assert "demo_pkg/sub/cli.py" in paths
    assert "../../../bin/demo-cli" in paths and "../../../bin/demo-raw" in paths
    for e in record:  # every RECORD path exists, relative to site-packages
        assert (sp / e.path).exists(), e.path
    # hashes for linked files are the archive's own RECORD values
    arch_record = {e.path: e for e in parse_record((arch / di.name / "RECORD").read_text())}
    ours = {e.path: e for e in record}
    assert ours["demo_pkg/__init__.py"].hash == arch_record["demo_pkg/__init__.py"].hash
    assert not (sp / ".kea-staging").exists()

    removed = uninstall(target, ["demo-pkg"])
    assert removed.removed == [("demo-pkg", "1.0")]
    assert not (sp / "demo_pkg").exists() and not (sp / "demo_top.py").exists()
    assert not (venv / "bin" / "demo-cli").exists() and not (venv / "bin" / "demo-raw").exists()
    assert not (venv / "share" / "demo").exists()
    assert not di.exists()
    assert installed_dists(target) == {}


@pytest.mark.parametrize("mode", ["clone", "hardlink", "copy", "symlink", None])
def test_link_modes(tmp_path: Path, venv: Path, mode: str | None) -> None:
    target = target_of(venv, tmp_path / "cache")
    arch = archive(tmp_path, "linked", "1.0", files={"linked/__init__.py": "X = 'ok'\n"})
    report = install(target, WantedDist("linked", "1.0", arch), link_mode=mode)
    assert py(venv, "import linked; print(linked.X)") == "ok"
    installed = site_packages(venv) / "linked" / "__init__.py"
    source = arch / "linked" / "__init__.py"
    if mode == "symlink":
        assert installed.is_symlink() and installed.resolve() == source.resolve()
        assert report.link_methods == {"symlink"}
    elif mode == "hardlink":
        assert os.stat(installed).st_ino == os.stat(source).st_ino
        assert report.link_methods == {"hardlink"}
    elif mode == "copy":
        assert os.stat(installed).st_ino != os.stat(source).st_ino
        assert report.link_methods == {"copy"}
    else:  # clone where the filesystem can, else a fallback that still works
        assert not installed.is_symlink()
        assert report.link_methods <= {"clone", "hardlink", "copy"} and report.link_methods


def test_linker_rejects_unknown_mode() -> None:
    with pytest.raises(KeaError, match="invalid link mode"):
        Linker("teleport")


def test_upgrade_replaces_files_and_compile_bytecode(tmp_path: Path, venv: Path) -> None:
    target = target_of(venv, tmp_path / "cache")
    v1 = archive(tmp_path, "up", "1.0", files={"up/__init__.py": "V = 1\n", "up/old_only.py": ""})
    v2 = archive(tmp_path, "up", "2.0", files={"up/__init__.py": "V = 2\n", "up/new_only.py": ""})
    install(target, WantedDist("up", "1.0", v1), compile_bytecode=True)
    sp = site_packages(venv)
    assert list((sp / "up" / "__pycache__").glob("old_only.*.pyc"))
    report = install(target, WantedDist("up", "2.0", v2), compile_bytecode=True)
    assert report.removed == [("up", "1.0")] and report.installed == [("up", "2.0")]
    assert py(venv, "import up; print(up.V)") == "2"
    assert not (sp / "up" / "old_only.py").exists()
    assert not list((sp / "up" / "__pycache__").glob("old_only.*"))
    assert (sp / "up" / "new_only.py").exists()
    assert not (sp / "up-1.0.dist-info").exists()
    pycs = {e.path for e in parse_record((sp / "up-2.0.dist-info" / "RECORD").read_text())}
    assert any(p.startswith("up/__pycache__/new_only.") for p in pycs)
    # pyc names the installed path, not the staging directory
    code = "import up.new_only as m; print(m.__spec__.cached)"
    assert str(sp) in py(venv, code)


def test_plan_unchanged_reinstall_and_remove(tmp_path: Path, venv: Path) -> None:
    target = target_of(venv, tmp_path / "cache")
    a = archive(tmp_path, "alpha", "1.0")
    b = archive(tmp_path, "beta", "1.0")
    install(target, WantedDist("alpha", "1.0", a), WantedDist("beta", "1.0", b))
    installed = installed_dists(target)
    plan = make_plan([WantedDist("Alpha", "1.0", a)], installed)
    assert plan.empty and [d.name for d in plan.unchanged] == ["alpha"]
    plan = make_plan([WantedDist("alpha", "1.0", a)], installed, reinstall=["ALPHA"])
    assert [w.name for w in plan.to_install] == ["alpha"]
    assert [d.name for d in plan.to_remove] == ["alpha"]
    plan = make_plan([WantedDist("alpha", "1.0", a)], installed, remove_unwanted=True)
    assert [d.name for d in plan.to_remove] == ["beta"]
    url = json.dumps({"url": "file:///x/alpha-1.0-py3-none-any.whl", "archive_info": {}})
    plan = make_plan([WantedDist("alpha", "1.0", a, direct_url=url)], installed)
    assert [w.name for w in plan.to_install] == ["alpha"]  # now from a URL: reinstall


@pytest.mark.parametrize("bad", ["../../../escape.py", "/tmp/kea-absolute-escape.py"])
def test_paths_escaping_the_target_are_refused(tmp_path: Path, venv: Path, bad: str) -> None:
    target = target_of(venv, tmp_path / "cache")
    good = archive(tmp_path, "fine", "1.0")
    evil = archive(tmp_path, "evil", "1.0", record_extra=[f"{bad},sha256=x,1"])
    with pytest.raises(KeaError, match="escapes the install target"):
        install(target, WantedDist("fine", "1.0", good), WantedDist("evil", "1.0", evil))
    # nothing at all: no package, no staging leftovers, no lock (that lives in the venv root)
    assert list(site_packages(venv).iterdir()) == []
    assert (venv / ".kea.lock").is_file()
    assert not (tmp_path / "escape.py").exists()
    assert not Path("/tmp/kea-absolute-escape.py").exists()
    assert installed_dists(target) == {}


def test_bad_data_scheme_and_missing_file_refused(tmp_path: Path, venv: Path) -> None:
    target = target_of(venv, tmp_path / "cache")
    arch = archive(tmp_path, "odd", "1.0", data={"nowhere/x": "x"})
    with pytest.raises(KeaError, match=r"unknown \.data scheme"):
        install(target, WantedDist("odd", "1.0", arch))
    arch = archive(tmp_path, "gone", "1.0", record_extra=["gone/missing.py,sha256=x,1"])
    with pytest.raises(KeaError, match=r"gone/missing\.py is missing from"):
        install(target, WantedDist("gone", "1.0", arch))
    assert installed_dists(target) == {}


def test_target_dir_install(tmp_path: Path, venv: Path) -> None:
    from kea.install.environment import resolve_target

    dest = tmp_path / "tgt"
    target = resolve_target(
        python=str(venv), target=dest, cache_dir=tmp_path / "cache" / "interpreters-v1"
    )
    arch = archive(tmp_path, "demo-pkg", "1.0", **DEMO)
    install(target, WantedDist("demo-pkg", "1.0", arch))
    assert (dest / "demo_pkg" / "__init__.py").is_file()
    assert (dest / "bin" / "demo-cli").is_file()
    assert (dest / "demo_pkg-1.0.dist-info" / "RECORD").is_file()


def test_failed_staging_removes_entries_created_in_place(tmp_path: Path, venv: Path) -> None:
    # "fine" and "gone" are laid out in place (nothing there yet); "gone" lacks a file its RECORD
    # lists, which is found while linking: the whole run is undone, "fine" included.
    target = target_of(venv, tmp_path / "cache")
    fine = archive(tmp_path, "fine", "1.0", console_scripts={"fine-cli": "fine:main"})
    gone = archive(
        tmp_path,
        "gone",
        "1.0",
        files={"gone/__init__.py": "", "gone/sub/there.py": "", "gone/sub/zz_missing.py": ""},
    )
    (gone / "gone" / "sub" / "zz_missing.py").unlink()
    with pytest.raises(KeaError, match=r"zz_missing\.py is missing from"):
        install(target, WantedDist("fine", "1.0", fine), WantedDist("gone", "1.0", gone))
    assert list(site_packages(venv).iterdir()) == []
    assert not (venv / "bin" / "fine-cli").exists()
    assert installed_dists(target) == {}
    install(target, WantedDist("fine", "1.0", fine))
    assert py(venv, "import fine; print(fine.VERSION)") == "1.0"


@pytest.mark.parametrize(
    "shape",
    [
        {"console_scripts": {"python": "m:main"}},
        {"gui_scripts": {"python3": "m:main"}},
        {"data": {"scripts/activate": "#!/bin/sh\n"}},
        {"console_scripts": {"python3.11": "m:main"}},
        {"console_scripts": {"python3.13t": "m:main"}},
        {"data": {"data/bin/python": "#!/bin/sh\n"}},
    ],
    ids=[
        "console python",
        "gui python3",
        "data script activate",
        "console python3.11",
        "console python3.13t",
        "data file in bin",
    ],
)
def test_a_script_that_would_replace_the_interpreter_is_refused(
    tmp_path: Path, venv: Path, shape: dict[str, dict[str, str]]
) -> None:
    """A wheel's ``python = m:main`` entry point made bin/python a launcher that named itself
    in its #! line: the environment could no longer run, not even for kea to undo it."""
    target = target_of(venv, tmp_path / "cache")
    before = {p.name: os.path.realpath(p) for p in (venv / "bin").iterdir()}
    arch = archive(tmp_path, "clobber", "1.0", files={"m.py": "def main(): pass\n"}, **shape)
    with pytest.raises(KeaError, match="would replace the environment's own interpreter"):
        install(target, WantedDist("clobber", "1.0", arch))
    assert {p.name: os.path.realpath(p) for p in (venv / "bin").iterdir()} == before
    assert py(venv, "print('still runs')") == "still runs"
    assert not list(site_packages(venv).glob("clobber*"))


def test_an_environment_kea_cannot_write_to_is_one_line_and_unchanged(
    tmp_path: Path, venv: Path
) -> None:
    """What a read-only site-packages gives (root writes anywhere, so the staging directory's
    place is taken by a file instead): an error naming the environment, not an unexpected
    OSError."""
    target = target_of(venv, tmp_path / "cache")
    blocker = site_packages(venv) / ".kea-staging"
    blocker.write_text("not a directory\n")
    arch = archive(tmp_path, "demo-pkg", "1.0", **DEMO)
    with pytest.raises(KeaError, match=r"cannot write to .*site-packages") as caught:
        install(target, WantedDist("demo-pkg", "1.0", arch))
    assert caught.value.hint is not None and "nothing was changed" in caught.value.hint
    assert not list(site_packages(venv).glob("demo*"))
    assert blocker.read_text() == "not a directory\n"


def _refused_for_staging(tmp_path: Path, venv: Path, files: dict[str, str]) -> None:
    """Installing ``sneaky`` made of ``files`` is refused, and leaves nothing of it."""
    target = target_of(venv, tmp_path / "cache")
    arch = archive(tmp_path, "sneaky", "1.0", files=files)
    with pytest.raises(
        KeaError, match=r"writes into \.kea-staging, the directory where kea stages"
    ):
        install(target, WantedDist("sneaky", "1.0", arch))
    assert not (site_packages(venv) / ".kea-staging").exists()
    assert not list(site_packages(venv).glob("sneaky*"))


def test_a_wheel_with_a_top_level_kea_staging_is_refused(tmp_path: Path, venv: Path) -> None:
    """It went into kea's own staging directory, where the next run's recovery took it for a
    run killed before its journal and removed it."""
    _refused_for_staging(tmp_path, venv, {"sneaky/__init__.py": "", ".kea-staging/x": "1\n"})


@pytest.mark.parametrize("lib", ["lib", "lib64"])
def test_a_wheel_reaching_kea_staging_through_its_data_scheme_is_refused(
    tmp_path: Path, venv: Path, lib: str
) -> None:
    """The data scheme's root is the environment's: ``.data/data/lib/python3.X/site-packages/``
    is site-packages itself (``lib64`` a link to ``lib`` where the venv has one)."""
    target = target_of(venv, tmp_path / "cache")
    rel = site_packages(venv).relative_to(venv)
    if lib == "lib64":
        if not (venv / "lib64").is_symlink():
            (venv / "lib64").symlink_to("lib")
        rel = Path("lib64", *rel.parts[1:])
    files = {
        "sneaky/__init__.py": "",
        f"sneaky-1.0.data/data/{rel}/.kea-staging/x": "1\n",
        "sneaky-1.0.data/data/share/sneaky/.kea-staging/y": "2\n",  # elsewhere: harmless
    }
    _refused_for_staging(tmp_path, venv, files)
    assert not (venv / "share" / "sneaky").exists()
    # the harmless one alone installs
    del files[f"sneaky-1.0.data/data/{rel}/.kea-staging/x"]
    install(
        target, WantedDist("sneaky", "1.0", archive(tmp_path / "ok", "sneaky", "1.0", files=files))
    )
    assert (venv / "share" / "sneaky" / ".kea-staging" / "y").read_text() == "2\n"
