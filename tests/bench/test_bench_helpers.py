"""The benchmark harness's pure helpers (nothing timed: the benchmark stays out of tests)."""

from __future__ import annotations

import hashlib
import sys
import zipfile
from pathlib import Path

from kbench import index, report, sets, tools
from kbench.delay import expected_header
from kbench.measure import Sample, last_line, pair_ratios, run_timed
from kbench.servers import nginx_conf

from kea.index.html import parse_project_html


def test_parse_pins_reads_compiled_files() -> None:
    text = (
        "# header\nBlack==26.1\nmypy_extensions==1.2.0 ; python_version >= '3'\n\n"
        "uvicorn[standard]==0.3  # via x\n-e ./local\n"
    )
    assert sets.parse_pins(text) == {
        "black": "26.1",
        "mypy-extensions": "1.2.0",
        "uvicorn": "0.3",
    }


def test_wheel_files_matched_to_pins() -> None:
    names = [
        "black-26.1-cp311-cp311-manylinux_2_28_x86_64.whl",
        "Mypy_Extensions-1.2.0-py3-none-any.whl",
        "pkg-1.0.tar.gz",
        "pkg-0.9-1-py3-none-any.whl",
    ]
    assert sets.wheel_name_version(names[3]) == ("pkg", "0.9")
    assert sets.wheel_name_version(names[2]) is None
    found, missing = sets.files_for_pins(
        {"black": "26.1", "mypy-extensions": "1.2.0", "pkg": "1.0"}, names
    )
    assert found == [names[0], names[1]]
    assert missing == ["pkg==1.0"]


def test_committed_sets_are_pinned_and_large_enough() -> None:
    sizes = {name: len(sets.set_pins(name)) for name in sets.SETS}
    assert sizes["black"] >= 5
    assert 30 <= sizes["trio"] <= 60
    assert 80 <= sizes["jupyter"] <= 120
    assert sizes["large"] >= 250
    pins = sets.set_pins("boto3")
    assert pins["urllib3"].startswith("1.25.")
    decoys = sets.decoy_pins("boto3")
    assert {p for p, _ in decoys} == {"boto3", "botocore"}
    assert all(v != pins[p] for p, v in decoys)


def _wheel(dest: Path, name: str, version: str, requires_python: str | None) -> Path:
    path = dest / f"{name}-{version}-py3-none-any.whl"
    meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    if requires_python:
        meta += f"Requires-Python: {requires_python}\n"
    meta += "\nA description with Requires-Python: <2 in the body.\n"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(f"{name}/__init__.py", "")
        z.writestr(f"{name}-{version}.dist-info/METADATA", meta)
        z.writestr(f"{name}-{version}.dist-info/WHEEL", "Wheel-Version: 1.0\n")
    return path


def test_build_index_pages_parse_as_pep503_with_pep658(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    a = _wheel(wheels, "alpha_pkg", "1.0", ">=3.9")
    b = _wheel(wheels, "alpha_pkg", "2.0", None)
    root = tmp_path / "index"
    simple = index.build_index(root, wheels, "s1", [a.name, b.name])
    page = simple / "alpha-pkg" / "index.html"
    url = "http://127.0.0.1:1/s1/simple/alpha-pkg/"
    parsed = parse_project_html(page.read_bytes(), url)
    by_name = {f.filename: f for f in parsed.files}
    assert set(by_name) == {a.name, b.name}
    fa = by_name[a.name]
    assert fa.url == f"http://127.0.0.1:1/files/{a.name}"
    assert fa.hashes == {"sha256": hashlib.sha256(a.read_bytes()).hexdigest()}
    assert fa.requires_python == ">=3.9"
    assert by_name[b.name].requires_python is None  # the body's text is not a header
    meta = (root / "files" / (a.name + ".metadata")).read_bytes()
    assert meta.startswith(b"Metadata-Version: 2.1\nName: alpha_pkg")
    assert fa.core_metadata == {"sha256": hashlib.sha256(meta).hexdigest()}
    assert (root / "files" / a.name).resolve() == a.resolve()
    assert "alpha-pkg/" in (simple / "index.html").read_text()
    # a rebuild with fewer files rewrites the pages (the hash memo is reused)
    index.build_index(root, wheels, "s1", [b.name])
    assert "alpha-pkg" in [p.name for p in simple.iterdir()]
    assert a.name not in (simple / "alpha-pkg" / "index.html").read_text()


def test_commands_per_tool_and_scenario(tmp_path: Path) -> None:
    ctx = tools.Ctx(tmp_path / "bin", tmp_path / "venv", tmp_path / "c", tmp_path / "r.txt", "U")
    warm, offline = tools.SCENARIOS["install-warm"], tools.SCENARIOS["install-warm-offline"]
    resolve = tools.SCENARIOS["resolve-cold"]
    kea = tools.command("kea", offline, ctx)
    assert kea is not None and kea[:3] == [str(tmp_path / "bin" / "kea"), "pip", "install"]
    assert "--offline" in kea and kea[kea.index("--cache-dir") + 1] == str(tmp_path / "c")
    assert tools.command("pip", offline, ctx) is None  # no honest equivalent
    pip = tools.command("pip", resolve, ctx)
    assert pip is not None and pip[-1] == "--dry-run"
    assert pip[pip.index("--python") + 1] == str(tmp_path / "venv" / "bin" / "python")
    uv = tools.command("uv", warm, ctx)
    assert uv is not None and "--dry-run" not in uv and "--offline" not in uv
    env = tools.environment("pip", tmp_path, tmp_path / "t", None, "/bin")
    assert env["PIP_CONFIG_FILE"] == "/dev/null" and "NETRC" not in env
    assert env["TMPDIR"] == str(tmp_path / "t")
    uv_env = tools.environment("uv", tmp_path, tmp_path / "t", tmp_path / "n", "/bin")
    assert uv_env["UV_NO_CONFIG"] == "1" and uv_env["NETRC"] == str(tmp_path / "n")


def test_rotation_alternates_who_goes_first() -> None:
    order = [tools.rotation(["kea", "uv", "pip"], i)[0] for i in range(6)]
    assert order == ["kea", "uv", "pip", "kea", "uv", "pip"]
    assert tools.rotation([], 3) == []


def test_pair_ratios_skip_failed_runs() -> None:
    assert pair_ratios([2.0, None, 3.0], [1.0, 1.0, 2.0]) == [2.0, 1.5]


def test_last_line_masks_secrets() -> None:
    text = "ok\nerror: 401 for http://bench:s3cret@127.0.0.2/x\n\n"
    assert last_line(text, ["s3cret"]) == "error: 401 for http://bench:****@127.0.0.2/x"


def test_run_timed_records_rss_and_failures() -> None:
    big = run_timed([sys.executable, "-c", "b = bytearray(80 << 20)"], {}, timeout=30)
    assert big.ok and big.rss_mb >= 80
    bad = run_timed(
        [sys.executable, "-c", "import sys; sys.exit('boom token123')"],
        {},
        timeout=30,
        secrets=["token123"],
    )
    assert not bad.ok and bad.error == "exit 1: boom ****"


def _cell(times: list[float | None], rss: float = 50.0) -> report.Cell:
    return report.Cell(
        [Sample(t, rss, True) if t is not None else Sample(1.0, rss, False, "x") for t in times]
    )


def test_judge_targets() -> None:
    res: report.Results = {
        ("jupyter", "install-warm"): {
            "kea": _cell([1.2, 1.4, 1.0]),
            "uv": _cell([1.0, 1.0, 1.0]),
            "pip": _cell([30.0, 28.0, 20.0]),
        },
        ("jupyter", "install-noop"): {"kea": _cell([3.0, None]), "uv": _cell([1.0, 1.0])},
        ("black", "seed"): {"kea": _cell([1.0], rss=130.0), "uv": _cell([2.0])},
    }
    by_label = {v.target.label: v for v in (report.judge(res, t) for t in report.TARGETS)}
    warm = by_label["install-warm: kea ≤ 1.5× uv"]
    assert warm.met is True and warm.measured == "kea/uv 1.20×"
    pip = by_label["install-warm: ≥ 20× faster than pip"]
    assert pip.met is True and pip.measured == "kea 20.0× faster than pip"
    noop = by_label["install-noop: kea ≤ 2× uv"]
    assert noop.met is False and "missed by 50%" in noop.detail
    assert by_label["install-cold: kea ≤ 1.2× uv"].met is None
    rss = by_label["peak RSS, any scenario: ≤ 120 MB"]
    assert rss.met is False and "black/seed" in rss.measured
    text = report.markdown(
        res,
        sets=["jupyter"],
        scenarios=["install-warm", "install-noop"],
        tools=["kea", "uv", "pip"],
        header=["# t"],
        verdicts=list(by_label.values()),
        profiles={"jupyter / install-noop": "profile text"},
        chart=None,
    )
    assert "| install-noop | 3.00 s [1 failed] | 1.00 s (1.00 s–1.00 s) | — | 3.00×" in text
    assert "**missed**" in text and "profile text" in text
    assert "`jupyter` / `install-noop` / kea: x" in text


def test_nginx_conf_delays_every_upstream_request(tmp_path: Path) -> None:
    conf = nginx_conf(tmp_path, tmp_path / "root", 1001, 1002, 1003)
    assert "listen 127.0.0.1:1001;" in conf and "listen 127.0.0.2:1002;" in conf
    assert conf.count("auth_request /_bench_auth;") == 1  # the upstream server only
    assert "server 127.0.0.1:1003" in conf
    # pages are served without an internal redirect, so the access check runs once per request
    assert "try_files $uri $uri/index.html =404;" in conf and "index " not in conf
    assert expected_header("bench", "pw") == "Basic YmVuY2g6cHc="


def test_results_state_round_trips_for_append(tmp_path: Path) -> None:
    from kbench.main import load_state, save_state

    res: report.Results = {
        ("black", "install-warm"): {"kea": _cell([1.0, None]), "pip": report.Cell([], "n/a")},
    }
    meta: dict[str, object] = {"runs": [{"command": "--quick"}], "profiles": {"k": "v"}}
    path = tmp_path / "r.json"
    save_state(path, res, meta)
    back, back_meta = load_state(path)
    assert back_meta == meta
    kea = back[("black", "install-warm")]["kea"]
    assert kea.times() == [1.0, None] and kea.failures() == ["x"]
    assert back[("black", "install-warm")]["pip"].note == "n/a"


def test_retired_paths_are_freed_between_scenarios_then_settled(tmp_path: Path) -> None:
    """A run's old venv or cache is renamed aside (nothing freed while runs are timed); the
    pile is freed before the next scenario, whose first timed run waits ``--settle`` seconds
    after that, once."""
    import time

    from kbench.main import Bench, parse_args

    bench = Bench(parse_args(["--settle", "0.3"]))
    bench.graveyard = tmp_path / "graveyard"
    venv = tmp_path / "venv"
    (venv / "lib").mkdir(parents=True)
    (venv / "lib" / "x.py").write_text("x = 1\n")
    bench.retire(venv)
    bench.retire(venv)  # nothing there any more: nothing to do
    assert not venv.exists()
    [kept] = bench.graveyard.iterdir()
    assert (kept / "lib" / "x.py").read_text() == "x = 1\n"
    bench.settle()  # nothing freed yet: no wait
    bench.free_graveyard()
    assert not bench.graveyard.exists()
    started = time.monotonic()
    bench.settle()
    assert 0.25 <= time.monotonic() - started < 2.0
    started = time.monotonic()
    bench.settle()  # settled already
    assert time.monotonic() - started < 0.1


def test_on_the_journaled_scratch_filesystem_retired_paths_go_at_once(tmp_path: Path) -> None:
    """With a journal there is no inode scan to wait out: a retired venv is deleted right away,
    nothing piles up in a graveyard and the next scenario does not settle."""
    import time

    from kbench.main import Bench, parse_args

    bench = Bench(parse_args(["--settle", "30"]))
    bench.use(tmp_path, journaled=True)
    assert bench.venvs == tmp_path / "venvs" and bench.tmp == tmp_path / "tmp"
    venv = bench.venvs / "kea-fresh"
    (venv / "lib").mkdir(parents=True)
    (venv / "lib" / "x.py").write_text("x = 1\n")
    link = tmp_path / "link"
    link.symlink_to(venv)
    bench.retire(link)  # a symlink goes, not what it points to
    assert not link.exists() and (venv / "lib" / "x.py").exists()
    bench.retire(venv)
    assert not venv.exists() and not bench.graveyard.exists()
    bench.free_graveyard()
    started = time.monotonic()
    bench.settle()
    assert time.monotonic() - started < 1.0
    env = bench.env("pip", tools.SCENARIOS["install-cold"])
    assert env["TMPDIR"] == str(tmp_path / "tmp") and (tmp_path / "tmp").is_dir()
