"""The provider bridge: candidate selection, dependencies per extras/markers, and prefetch."""

from __future__ import annotations

import asyncio
import threading
import time
import zipfile
from datetime import UTC, datetime
from pathlib import Path

from packaging.utils import canonicalize_name, parse_wheel_filename
from packaging.version import Version

from kea.atomic import TMP_PREFIX
from kea.dist.metadata import CoreMetadata, parse_metadata
from kea.dist.tags import TagRanker
from kea.errors import KeaError
from kea.index.models import DistFile, ProjectPage
from kea.resolver.prefetch import Prefetcher, run_in_worker
from kea.resolver.provider import CandidatePolicy, dependencies_of, select_candidates
from tests.pip.wheelmaker import build_wheel

TAGS = [
    "cp311-cp311-manylinux_2_17_x86_64",
    "cp311-abi3-manylinux_2_17_x86_64",
    "cp311-none-any",
    "py3-none-any",
]
MARKERS = {
    "python_version": "3.11",
    "python_full_version": "3.11.7",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "os_name": "posix",
    "implementation_name": "cpython",
    "platform_machine": "x86_64",
    "platform_python_implementation": "CPython",
    "platform_release": "",
    "platform_version": "",
    "implementation_version": "3.11.7",
}


def policy(**kw: object) -> CandidatePolicy:
    return CandidatePolicy(
        tags=TagRanker(TAGS),
        python_version=Version("3.11.7"),
        markers=MARKERS,
        **kw,  # type: ignore[arg-type]
    )


def f(filename: str, **kw: object) -> DistFile:
    return DistFile(filename=filename, url=f"https://files.invalid/{filename}", **kw)  # type: ignore[arg-type]


def page(name: str, *files: DistFile, url: str = "https://one.invalid/simple/x/") -> ProjectPage:
    return ProjectPage(name=name, url=url, files=list(files))


def test_best_wheel_per_version_and_filters() -> None:
    pg = page(
        "demo",
        f("demo-1.0-py3-none-any.whl"),
        f("demo-1.0-cp311-cp311-manylinux_2_17_x86_64.whl"),
        f("demo-1.1-cp312-cp312-manylinux_2_17_x86_64.whl"),  # wrong interpreter
        f("demo-1.2-py3-none-any.whl", requires_python=">=3.12"),
        f("demo-1.3-py3-none-any.whl", yanked="broken"),
        f("demo-1.4.tar.gz"),
        f("demo-0.9-py3-none-any.whl", requires_python=">=3.8"),
        f("other-5.0-py3-none-any.whl"),  # another project's file: ignored
    )
    sel = select_candidates("Demo", [pg], policy())
    assert [str(c) for c in sel.candidates] == ["demo==1.0", "demo==0.9"]
    assert sel.candidates[0].file.filename == "demo-1.0-cp311-cp311-manylinux_2_17_x86_64.whl"
    assert sel.rejected == {
        "tags": ["demo-1.1-cp312-cp312-manylinux_2_17_x86_64.whl"],
        "requires-python": ["demo-1.2-py3-none-any.whl"],
        "yanked": ["demo-1.3-py3-none-any.whl"],
        "sdist": ["demo-1.4.tar.gz"],
    }
    assert sel.hint() is None


def test_yanked_allowed_when_pinned() -> None:
    pg = page("demo", f("demo-1.3-py3-none-any.whl", yanked=True))
    assert select_candidates("demo", [pg], policy()).candidates == []
    pinned = policy(pinned={"demo": frozenset({Version("1.3")})})
    assert [str(c) for c in select_candidates("demo", [pg], pinned).candidates] == ["demo==1.3"]


def test_binary_options_and_sdist_hint() -> None:
    pg = page("demo", f("demo-1.0-py3-none-any.whl"), f("demo-2.0.tar.gz"))
    sel = select_candidates("demo", [pg], policy(no_binary=[":all:"]))
    assert sel.candidates == []
    assert sel.hint() == "building from source is not supported yet: demo-2.0.tar.gz"
    # --only-binary for the package wins over --no-binary :all:
    sel = select_candidates("demo", [pg], policy(no_binary=[":all:"], only_binary=["Demo"]))
    assert [str(c) for c in sel.candidates] == ["demo==1.0"]
    # :none: resets
    sel = select_candidates("demo", [pg], policy(no_binary=[":all:,:none:"]))
    assert [str(c) for c in sel.candidates] == ["demo==1.0"]
    # only wheels, all refused by --no-binary: the reason names the option, not an sdist
    wheels_only = page("demo", f("demo-1.0-py3-none-any.whl"))
    sel = select_candidates("demo", [wheels_only], policy(no_binary=["demo"]))
    assert sel.reason() == (
        "may not be installed from wheels (--no-binary), and building from source is not "
        "supported yet"
    )
    assert "drop demo (or :all:) from --no-binary" in str(sel.hint())
    only_sdist = page("demo", f("demo-2.0.tar.gz"))
    assert select_candidates("demo", [only_sdist], policy()).hint() == (
        "building from source is not supported yet: demo-2.0.tar.gz"
    )
    assert select_candidates("demo", [], policy()).hint() == (
        "demo was not found in the package indexes"
    )


def test_exclude_newer() -> None:
    pg = page(
        "demo",
        f("demo-1.0-py3-none-any.whl", upload_time="2023-01-01T00:00:00Z"),
        f("demo-2.0-py3-none-any.whl", upload_time="2024-06-01T12:00:00.123456Z"),
        f("demo-3.0-py3-none-any.whl"),  # no upload time: kept
    )
    sel = select_candidates("demo", [pg], policy(exclude_newer=datetime(2024, 1, 1, tzinfo=UTC)))
    assert [str(c) for c in sel.candidates] == ["demo==3.0", "demo==1.0"]
    assert sel.rejected == {"exclude-newer": ["demo-2.0-py3-none-any.whl"]}


def test_first_page_wins_a_version() -> None:
    first = page("demo", f("demo-1.0-py3-none-any.whl"), url="https://first.invalid/simple/demo/")
    second = page(
        "demo",
        f("demo-1.0-cp311-cp311-manylinux_2_17_x86_64.whl"),
        f("demo-2.0-py3-none-any.whl"),
        url="https://second.invalid/simple/demo/",
    )
    sel = select_candidates("demo", [first, second], policy())
    by = {str(c): c for c in sel.candidates}
    assert by["demo==1.0"].index_url == "https://first.invalid/simple/demo/"
    assert by["demo==1.0"].file.filename == "demo-1.0-py3-none-any.whl"
    assert by["demo==2.0"].index_url == "https://second.invalid/simple/demo/"
    # unsafe-first-match ranks the versions by the page that provides them
    assert sel.tiers() == [[Version("1.0")], [Version("2.0")]]


def test_dependencies_of_extras_and_markers() -> None:
    meta = CoreMetadata(
        name="demo",
        version="1.0",
        requires_dist=(
            "base>=1",
            'win-only; sys_platform == "win32"',
            'old-py; python_version < "3.8"',
            'socks-dep; extra == "socks"',
            'Fancy_Dep[x]>=2; extra == "Fancy" and python_version >= "3.10"',
            "not a valid requirement (",
        ),
        provides_extra=("socks", "fancy"),
    )
    assert [str(r) for r in dependencies_of(meta, (), MARKERS)] == ["base>=1"]
    got = [r.name for r in dependencies_of(meta, ["fancy"], MARKERS)]
    assert got == ["base", "Fancy_Dep"]
    got = [r.name for r in dependencies_of(meta, ["socks", "fancy"], MARKERS)]
    assert got == ["base", "socks-dep", "Fancy_Dep"]


class WheelDirSource:
    """An IndexSource over a directory of real wheels (a flat find-links directory)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.page_requests: list[str] = []
        self.metadata_requests: list[str] = []
        self.in_flight = 0
        self.max_in_flight = 0

    async def project_pages(self, name: str) -> list[ProjectPage]:
        self.page_requests.append(name)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        await asyncio.sleep(0.01)
        self.in_flight -= 1
        files = [
            DistFile(filename=p.name, url=p.as_uri())
            for p in sorted(self.directory.glob("*.whl"))
            if canonicalize_name(parse_wheel_filename(p.name)[0]) == name
        ]
        return [ProjectPage(name=name, url=self.directory.as_uri(), files=files)] if files else []

    async def metadata(self, name: str, file: DistFile) -> CoreMetadata:
        self.metadata_requests.append(file.filename)
        path = self.directory / file.filename
        with zipfile.ZipFile(path) as zf:
            member = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
            return parse_metadata(zf.read(member), source=file.filename)


def test_prefetcher_walks_the_graph_ahead_of_the_resolver(tmp_path: Path) -> None:
    # app -> lib1..lib8 -> leaf; a second, older app version that nobody should fetch
    build_wheel(tmp_path, "app", "2.0", requires=[f"lib{i}>=1" for i in range(1, 9)])
    build_wheel(tmp_path, "app", "1.0")
    for i in range(1, 9):
        build_wheel(tmp_path, f"lib{i}", "1.0", requires=["leaf"])
    build_wheel(tmp_path, "leaf", "3.0", requires_python=">=3.8")
    build_wheel(tmp_path, "leaf", "4.0", tag="cp312-cp312-manylinux_2_17_x86_64")
    source = WheelDirSource(tmp_path)

    def resolve(pre: Prefetcher) -> dict[str, str]:
        # A tiny depth-first "resolver": newest candidate, follow dependencies.
        assert threading.current_thread().name == "kea-resolver"
        chosen: dict[str, str] = {}
        todo = ["app"]
        while todo:
            name = todo.pop()
            if name in chosen:
                continue
            cand = pre.versions(name).candidates[0]
            chosen[name] = str(cand.version)
            deps = [canonicalize_name(r.name) for r in dependencies_of(pre.metadata(cand), (), {})]
            pre.prefetch(deps)
            todo += deps
        return chosen

    async def main() -> tuple[dict[str, str], Prefetcher]:
        pre = Prefetcher(source, policy(), asyncio.get_running_loop(), concurrency=4)
        try:
            return await run_in_worker(lambda: resolve(pre)), pre
        finally:
            await pre.aclose()

    chosen, pre = asyncio.run(main())
    assert chosen == {"app": "2.0", "leaf": "3.0", **{f"lib{i}": "1.0" for i in range(1, 9)}}
    # every page and metadata fetched exactly once, in parallel but within the bound
    assert sorted(source.page_requests) == sorted(set(source.page_requests))
    assert len(source.page_requests) == 10
    assert sorted(source.metadata_requests) == sorted(set(source.metadata_requests))
    assert "app-1.0-py3-none-any.whl" not in source.metadata_requests
    assert 1 < source.max_in_flight <= 4
    assert pre.requested_pages == 10


def test_prefetcher_reraises_source_errors_to_the_asker(tmp_path: Path) -> None:
    from kea.errors import KeaError

    class Failing(WheelDirSource):
        async def project_pages(self, name: str) -> list[ProjectPage]:
            raise KeaError(f"index answered 500 for {name}")

    async def main() -> str:
        pre = Prefetcher(Failing(tmp_path), policy(), asyncio.get_running_loop())

        def ask() -> str:
            try:
                pre.versions("broken")
            except KeaError as e:
                return e.message
            return "no error"

        try:
            return await run_in_worker(ask)
        finally:
            await pre.aclose()

    assert asyncio.run(main()) == "index answered 500 for broken"


class _Target:
    tags = TAGS
    markers = MARKERS
    python_full_version = "3.11.7"


def _resolve_with_early_fetch(
    tmp_path: Path,
    requirements: list[str],
    *,
    fetch_early: bool,
    installed: dict[str, str],
    seen: list[str] | None = None,
    tamper: str | None = None,
    pinned_extra: int = 0,
    file_delay: float = 0.0,
    most_at_once: list[int] | None = None,
    universe: list[tuple[str, str, list[str]]] | None = None,
    held: dict[str, float] | None = None,
    cache_files: list[str] | None = None,
    downloads: dict[str, str] | None = None,
) -> tuple[list[str], list[str], dict[str, str]]:
    """Resolve through a real loopback index, IndexClient, HttpClient and cache; the wheel
    requests seen by the server when the resolution ended, after the installer fetched the
    chosen wheels, and the chosen versions. ``seen`` receives every request the server saw
    during the resolution. ``tamper``: a wheel of that project is rebuilt after the server
    listed its hash (its download then fails the hash check; its ``.metadata`` stays good).
    ``pinned_extra``: that many more projects ``p0``... (1.0, no dependencies) to pin;
    ``file_delay``: seconds the server holds each wheel; ``most_at_once`` receives the most
    wheel downloads the server had in flight at once. ``universe``: the wheels to serve, as
    (name, version, requirements), instead of app, dep, winonly and have; ``held``: seconds
    the server holds these files (by name); ``cache_files`` receives the paths in the cache
    when the resolution ended, and ``downloads`` the state of each wheel download then (by
    URL: "running", "done", "failed" or "cancelled")."""
    from packaging.requirements import Requirement

    from kea.cache import Cache
    from kea.http.client import HttpClient
    from kea.index.client import IndexClient
    from kea.resolver.provider import ResolveInput, resolve_request
    from kea.settings import load_settings
    from tests.pip.server import SimpleIndex

    wheels = tmp_path / "wheels"
    wheels.mkdir()
    if universe is None:
        universe = [
            ("app", "1.0", ["dep>=1"]),
            ("app", "2.0", ["dep>=1"]),
            ("dep", "1.5", []),
            ("winonly", "1.0", []),
            ("have", "3.0", []),
        ]
    for name, version, requires in universe:
        build_wheel(wheels, name, version, requires=requires)
    for i in range(pinned_extra):
        build_wheel(wheels, f"p{i}", "1.0")
    with SimpleIndex(wheels) as index:
        index.file_delay = file_delay
        index.held = dict(held or {})
        if tamper is not None:
            for path in wheels.glob(f"{tamper}-*.whl"):
                build_wheel(wheels, tamper, path.name.split("-")[1], files={"extra.py": "x = 1\n"})
        settings = load_settings(
            cli={"default_index": index.url, "no_config": True},
            env={"HOME": str(tmp_path), "KEA_HTTP_RETRIES": "0"},
            cwd=tmp_path,
        )
        spec = ResolveInput(
            requirements=[Requirement(r) for r in requirements],
            installed=installed,
            fetch_early=fetch_early,
        )

        async def main() -> tuple[list[str], list[str], dict[str, str]]:
            cache = Cache(tmp_path / "cache")
            async with HttpClient(settings) as http:
                client = IndexClient(settings, http, cache)
                chosen = await resolve_request(spec, client, _Target())
                at_resolution = [p for p in index.requests if p.endswith(".whl")]
                if downloads is not None:
                    for (kind, url), fut in client._tasks.items():
                        if kind == "wheel":
                            downloads[url] = _state(fut)
                if cache_files is not None:
                    root = tmp_path / "cache"
                    cache_files.extend(str(p.relative_to(root)) for p in root.rglob("*"))
                if seen is not None:
                    seen.extend(index.requests)
                for c in chosen:
                    if c.name not in installed:
                        try:
                            await client.fetch_wheel(c.file)
                        except KeaError:
                            if c.name != tamper:
                                raise
                after = [p for p in index.requests if p.endswith(".whl")]
                if most_at_once is not None:
                    most_at_once.append(index.most_files_at_once)
                return at_resolution, after, {c.name: str(c.version) for c in chosen}

        return asyncio.run(main())


def _state(fut: asyncio.Future[object]) -> str:
    if not fut.done():
        return "running"
    if fut.cancelled():
        return "cancelled"
    return "failed" if fut.exception() else "done"


def test_pinned_wheels_download_while_resolving_and_once(tmp_path: Path) -> None:
    reqs = ["app==1.0", "dep", "winonly==1.0; sys_platform == 'win32'", "have==3.0"]
    early, after, chosen = _resolve_with_early_fetch(
        tmp_path, reqs, fetch_early=True, installed={"have": "3.0"}
    )
    assert chosen == {"app": "1.0", "dep": "1.5", "have": "3.0"}
    # app==1.0's download started as its page arrived; dep's once the resolver decided it
    # (either may still have been on its way when the resolution ended). winonly's marker is
    # false and have is installed: neither was downloaded, early or late.
    assert {Path(p).name for p in after} == {"app-1.0-py3-none-any.whl", "dep-1.5-py3-none-any.whl"}
    assert sorted(Path(p).name for p in after).count("app-1.0-py3-none-any.whl") == 1
    assert {Path(p).name for p in early} <= {"app-1.0-py3-none-any.whl", "dep-1.5-py3-none-any.whl"}


def test_a_locked_request_takes_metadata_from_the_wheels(tmp_path: Path) -> None:
    seen: list[str] = []
    early, after, chosen = _resolve_with_early_fetch(
        tmp_path, ["app==1.0", "dep==1.5"], fetch_early=True, installed={}, seen=seen
    )
    assert chosen == {"app": "1.0", "dep": "1.5"}
    # Every requirement is pinned: each wheel was downloaded once, during the resolution,
    # and no .metadata file was asked for: the resolver read each wheel's own.
    assert sorted(Path(p).name for p in early) == [
        "app-1.0-py3-none-any.whl",
        "dep-1.5-py3-none-any.whl",
    ]
    assert sorted(Path(p).name for p in after) == sorted(Path(p).name for p in early)
    assert [p for p in seen if p.endswith(".metadata")] == []


def test_a_partly_pinned_request_still_fetches_metadata_files(tmp_path: Path) -> None:
    seen: list[str] = []
    _, _, chosen = _resolve_with_early_fetch(
        tmp_path, ["app==1.0", "dep"], fetch_early=True, installed={}, seen=seen
    )
    assert chosen == {"app": "1.0", "dep": "1.5"}
    # dep is not pinned: its download waits for the resolution, so the resolution must not
    # wait for app's whole wheel either. The metadata fetched ahead for app is that of its
    # pinned version, not of its latest (2.0).
    assert sorted(Path(p).name for p in seen if p.endswith(".metadata")) == [
        "app-1.0-py3-none-any.whl.metadata",
        "dep-1.5-py3-none-any.whl.metadata",
    ]


def test_early_downloads_of_a_partly_pinned_request_are_limited(tmp_path: Path) -> None:
    from kea.resolver.provider_fetch import LIMIT

    pins = [f"p{i}==1.0" for i in range(LIMIT + 4)]
    most: list[int] = []
    early, after, chosen = _resolve_with_early_fetch(
        tmp_path, ["app==1.0", "dep", *pins], fetch_early=True, installed={},
        pinned_extra=len(pins), file_delay=0.2, most_at_once=most,
    )  # fmt: skip
    assert chosen == {"app": "1.0", "dep": "1.5", **{f"p{i}": "1.0" for i in range(len(pins))}}
    # dep is not pinned, so the early downloads leave connections for the resolver's pages
    # and metadata: never more than LIMIT of them at once, the others waited for a turn.
    assert most == [LIMIT]
    assert early and {Path(p).name for p in early} <= {
        "app-1.0-py3-none-any.whl",
        *(f"p{i}-1.0-py3-none-any.whl" for i in range(len(pins))),
    }
    # Each wheel was downloaded once: the installer joined the downloads started early.
    names = sorted(Path(p).name for p in after)
    assert names == sorted(set(names)) and len(names) == len(pins) + 2


class _HandDriven:
    """A wheel source whose downloads the test moves on by hand: each ``start_wheel`` is kept
    with its ``downloaded`` callback and the future the test ends."""

    def __init__(self) -> None:
        self.started: dict[str, tuple[object, asyncio.Future[Path]]] = {}

    def start_wheel(self, file: DistFile, downloaded: object = None) -> asyncio.Future[Path]:
        fut: asyncio.Future[Path] = asyncio.get_running_loop().create_future()
        self.started[file.filename] = (downloaded, fut)
        return fut

    def metadata_with_wheel(self, file: DistFile) -> None:
        pass

    def bytes_in(self, filename: str) -> None:
        downloaded = self.started[filename][0]
        assert callable(downloaded)
        downloaded()


def test_a_download_s_turn_on_the_wire_ends_when_its_bytes_are_in() -> None:
    from kea.resolver.provider_fetch import LIMIT, EarlyFetch
    from kea.resolver.provider_select import Candidate

    def decision(i: int) -> Candidate:
        name = f"p{i}-1.0-py3-none-any.whl"
        file = DistFile(name, f"https://files.example/{name}")
        return Candidate(f"p{i}", Version("1.0"), file, "https://index.example/simple/")

    async def main() -> None:
        source = _HandDriven()
        fetch = EarlyFetch(source, {})  # type: ignore[arg-type]
        for i in range(3 * LIMIT):
            fetch.decided(decision(i))
        first = list(source.started)
        assert len(first) == LIMIT
        # Their bytes are in: they wait to be unpacked, off the wire, and as many more start.
        for name in first:
            source.bytes_in(name)
        second = [n for n in source.started if n not in first]
        assert len(second) == LIMIT
        # Those are in too: twice LIMIT now wait to be unpacked, and nothing more starts
        # until one of them ends. Told twice, a download frees its turn once.
        for name in second:
            source.bytes_in(name)
        source.bytes_in(second[0])
        assert len(source.started) == 2 * LIMIT
        source.started[first[0]][1].set_result(Path("/unpacked"))
        await asyncio.sleep(0)  # done callbacks run on the loop
        assert len(source.started) == 2 * LIMIT + 1
        # A download that fails before its bytes are all in frees its turn as it ends.
        newest = list(source.started)[-1]
        source.started[newest][1].set_exception(KeaError("connection reset"))
        await asyncio.sleep(0)
        assert len(source.started) == 2 * LIMIT + 2
        await fetch.aclose()
        assert all(fut.done() for _, fut in source.started.values())
        assert len(source.started) == 2 * LIMIT + 2  # nothing queued started after the end

    asyncio.run(main())


def test_decided_wheels_download_while_the_resolution_still_waits(tmp_path: Path) -> None:
    # Nothing is pinned. dep's metadata takes the server 0.5 s: the resolver, which has
    # decided app 2.0 already, waits for it. app's wheel downloads meanwhile.
    held = {"dep-1.5-py3-none-any.whl.metadata": 0.5}
    early, after, chosen = _resolve_with_early_fetch(
        tmp_path, ["app"], fetch_early=True, installed={}, held=held
    )
    assert chosen == {"app": "2.0", "dep": "1.5"}
    assert "app-2.0-py3-none-any.whl" in {Path(p).name for p in early}
    # Each wheel was downloaded once: the installer joined the downloads started early.
    assert sorted(Path(p).name for p in after) == [
        "app-2.0-py3-none-any.whl",
        "dep-1.5-py3-none-any.whl",
    ]


def test_a_decision_the_search_undid_has_its_download_cancelled(tmp_path: Path) -> None:
    # pin<2 leaves pin one version, decided first; top 2.0 comes next and stands its own
    # dependencies, so its wheel starts downloading. Then mid needs pin>=2: the search goes
    # back to top 1.0 (mid's metadata is held 0.3 s: top 2.0's download has begun by then).
    # That download, held by the server for 30 s, is cancelled when the resolution ends, and
    # leaves nothing in the cache.
    universe = [
        ("top", "1.0", []),
        ("top", "2.0", ["mid"]),
        ("mid", "1.0", ["pin>=2"]),
        ("pin", "1.0", []),
        ("pin", "2.0", []),
    ]
    seen: list[str] = []
    files: list[str] = []
    downloads: dict[str, str] = {}
    started = time.monotonic()
    _, after, chosen = _resolve_with_early_fetch(
        tmp_path, ["top", "pin<2"], fetch_early=True, installed={}, universe=universe,
        held={"top-2.0-py3-none-any.whl": 30.0, "mid-1.0-py3-none-any.whl.metadata": 0.3},
        seen=seen, cache_files=files, downloads=downloads,
    )  # fmt: skip
    assert time.monotonic() - started < 10  # nothing waited for the held download
    assert chosen == {"top": "1.0", "pin": "1.0"}
    assert "top-2.0-py3-none-any.whl" in {Path(p).name for p in seen}
    assert {Path(u).name: v for u, v in downloads.items()}["top-2.0-py3-none-any.whl"] == (
        "cancelled"
    )
    assert not [f for f in files if Path(f).name.startswith(TMP_PREFIX)]
    assert [f for f in files if f.startswith("wheels-") and "top-" in f] == []
    assert sorted(Path(p).name for p in after if "top-1.0" in p) == ["top-1.0-py3-none-any.whl"]


def test_metadata_falls_back_to_the_file_when_the_wheel_fails(tmp_path: Path) -> None:
    seen: list[str] = []
    _, _, chosen = _resolve_with_early_fetch(
        tmp_path, ["app==1.0", "dep==1.5"], fetch_early=True, installed={}, seen=seen,
        tamper="app",
    )  # fmt: skip
    # app's wheel no longer has the hash its page lists: its download fails, and the
    # resolution read app's .metadata instead (the installer reports the bad wheel).
    assert chosen == {"app": "1.0", "dep": "1.5"}
    assert [Path(p).name for p in seen if p.endswith(".metadata")] == [
        "app-1.0-py3-none-any.whl.metadata"
    ]


def test_locked_means_every_requirement_is_pinned_or_installed() -> None:
    from packaging.requirements import Requirement

    from kea.resolver.provider_fetch import early_pins, locked

    def check(lines: list[str], installed: dict[str, str] | None = None) -> bool:
        reqs = [Requirement(r) for r in lines]
        pins = early_pins(reqs, markers=MARKERS, installed=installed)
        return locked(reqs, pins, markers=MARKERS, installed=installed)

    assert check(["a==1.0", "B==2.0"])
    assert check(["a==1.0", "w==1.0; sys_platform == 'win32'", "x>=1; python_version < '3'"])
    assert check(["a==1.0", "h==3.0"], installed={"H": "3.0"})
    assert not check(["a==1.0", "b>=1"])
    assert not check(["a==1.0", "c==1.*"])
    assert not check(["h==3.0"], installed={"h": "3.0"})  # nothing to download
    assert not check([])


def test_no_early_downloads_unless_asked(tmp_path: Path) -> None:
    early, after, chosen = _resolve_with_early_fetch(
        tmp_path, ["app==2.0"], fetch_early=False, installed={}
    )
    assert chosen == {"app": "2.0", "dep": "1.5"}
    assert early == []  # a --dry-run never downloads a wheel
    assert sorted(Path(p).name for p in after) == [
        "app-2.0-py3-none-any.whl",
        "dep-1.5-py3-none-any.whl",
    ]


def test_early_pins_choose_only_unambiguous_requirements() -> None:
    from packaging.requirements import Requirement

    from kea.resolver.provider_fetch import early_pins

    reqs = [
        Requirement(r)
        for r in (
            "a==1.0",
            "b>=1",
            "c==1.*",
            "d==2.0,!=2.1",
            "e==1.0",
            "e==2.0",
            "f==1.0; python_version < '3'",
            "g===1.0",
            "h==3.0",
            "i==4.0",
            "j @ https://example.invalid/j-1.0-py3-none-any.whl",
        )
    ]
    got = early_pins(reqs, markers=MARKERS, skip=["i"], installed={"H": "3.0"})
    assert got == {"a": Version("1.0")}


def test_narrowed_pins_equal_early_pins_asked_with_the_same_skips() -> None:
    """The early downloads narrow the prefetcher's pins instead of reading the requirements a
    second time: the answer is the one early_pins gives when asked with everything at once."""
    from packaging.requirements import Requirement

    from kea.resolver.provider_fetch import early_pins, narrowed

    reqs = [
        Requirement(r)
        for r in (
            "a==1.0",
            "B_b==2.0",
            "c==1.0",
            "c==2.0",  # conflicting: never pinned
            "d==3.0",
            "e==4.0",
            "f>=1",
        )
    ]
    installed = {"D": "3.0", "e": "3.9", "x": "1.0"}
    first = early_pins(reqs, markers=MARKERS, skip=["a"])
    assert first == {"b-b": Version("2.0"), "d": Version("3.0"), "e": Version("4.0")}
    got = narrowed(first, skip=["B.B"], installed=installed)
    assert got == early_pins(reqs, markers=MARKERS, skip=["a", "B.B"], installed=installed)
    assert got == {"e": Version("4.0")}  # d is installed at its pin; e at another version
