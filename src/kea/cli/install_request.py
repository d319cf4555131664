"""The request of ``kea pip install``: requirements from the command line and files, and the
no-op audit that answers from the installed metadata when everything is already satisfied."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import msgspec

from kea.errors import KeaError, UsageError

if TYPE_CHECKING:
    from kea.dist.installed import InstalledDist
    from kea.dist.requirements import Entry, RequirementsSet
    from kea.settings import Settings


class Request(msgspec.Struct):
    """Everything the user asked for, from the command line and the files."""

    requirements: list[Entry] = msgspec.field(default_factory=list)
    constraints: list[Entry] = msgspec.field(default_factory=list)
    overrides: list[Entry] = msgspec.field(default_factory=list)
    files: RequirementsSet | None = None
    hash_mode: bool = False
    upgrade: bool = False
    upgrade_packages: frozenset[str] = frozenset()
    reinstall: bool = False
    reinstall_packages: frozenset[str] = frozenset()
    no_deps: bool = False
    dry_run: bool = False


def gather_request(params: dict[str, Any]) -> Request:
    """Parse positional requirements and every -r/-c/--overrides file (pops those params)."""
    from kea.dist.names import canonicalize_name
    from kea.dist.requirements import (
        RequirementsSet,
        check_hashes,
        parse_requirement,
        parse_requirements,
    )

    files = RequirementsSet()
    req_files = list(params.pop("requirements", ()) or ())
    for path in req_files:
        before = len(files.requirements)
        files.extend(parse_requirements(path))
        if len(files.requirements) == before:
            from kea.cli.output import warn

            warn(f"requirements file {path} does not name any package")
    for path in params.pop("constraints", ()) or ():
        files.extend(parse_requirements(path, constraint=True))
    overrides = RequirementsSet()
    for path in params.pop("overrides", ()) or ():
        overrides.extend(parse_requirements(path))
    # what was read, for the no-op stamp (kea.cli.fastpath_stamp)
    files.digests += [d for d in overrides.digests if d not in files.digests]
    files.env_names += [n for n in overrides.env_names if n not in files.env_names]
    editables = list(params.pop("editables", ()) or ())
    if editables or files.editables:
        raw = editables[0] if editables else files.editables[0].raw
        raise KeaError(
            f"editable installs are not supported yet: {raw}",
            hint="build a wheel of the project and install that",
        )
    reqs = [parse_requirement(p, "command line") for p in params.pop("packages", ()) or ()]
    reqs += files.requirements
    if not reqs and not req_files:  # an empty file is said above, and installs nothing (uv)
        raise UsageError(
            "no requirements given",
            hint="name packages (kea pip install requests) or pass -r requirements.txt",
        )
    require_hashes = bool(params.pop("require_hashes", False)) or files.require_hashes
    hash_mode = check_hashes(reqs, require_hashes)

    def names(values: Iterable[str]) -> frozenset[str]:
        return frozenset(canonicalize_name(v) for v in values)

    return Request(
        requirements=reqs,
        constraints=files.constraints,
        overrides=overrides.requirements + overrides.constraints,
        files=files,
        hash_mode=hash_mode,
        upgrade=bool(params.pop("upgrade", False)),
        upgrade_packages=names(params.pop("upgrade_package", ()) or ()),
        reinstall=bool(params.pop("reinstall", False)),
        reinstall_packages=names(params.pop("reinstall_package", ()) or ()),
        no_deps=bool(params.pop("no_deps", False)),
        dry_run=bool(params.pop("dry_run", False)),
    )


def merge_file_indexes(params: dict[str, Any], files: RequirementsSet | None) -> None:
    """Index options found in requirements files apply unless the command line set them."""
    if files is None:
        return
    if files.index_url and not (params.get("index_url") or params.get("default_index")):
        params["index_url"] = files.index_url
    if files.extra_index_urls:
        params["extra_index_url"] = tuple(params.get("extra_index_url") or ()) + tuple(
            u for u in files.extra_index_urls if u not in (params.get("extra_index_url") or ())
        )
    if files.find_links:
        params["find_links"] = tuple(params.get("find_links") or ()) + tuple(files.find_links)
    if files.no_index:
        params["no_index"] = True
    if files.pre and not params.get("prerelease"):
        params["pre"] = True
    if files.only_binary:
        params["only_binary"] = tuple(params.get("only_binary") or ()) + tuple(files.only_binary)
    if files.no_binary:
        params["no_binary"] = tuple(params.get("no_binary") or ()) + tuple(files.no_binary)


# -- the no-op audit -----------------------------------------------------------------------------


def audit_installed(
    request: Request, installed: Mapping[str, InstalledDist], markers: Mapping[str, str]
) -> int | None:
    """The number of installed packages the request needs, if all are already satisfied.

    None as soon as anything is missing, at a wrong version, asked to be upgraded or
    reinstalled, or a direct URL: then the resolver must run. Reads installed metadata only.
    """
    from packaging.version import InvalidVersion, Version

    from kea.dist.names import canonicalize_name
    from kea.resolver.provider_select import dependencies_of

    overridden = _override_names(request)
    if request.upgrade or request.reinstall or request.upgrade_packages:
        return None
    if any(e.requirement.url for e in request.constraints):
        return None  # where a package must come from: the resolver compares it
    if request.reinstall_packages or request.hash_mode:
        return None
    pins: dict[str, list[Any]] = {}
    for entry in (*request.constraints, *request.overrides):
        pins.setdefault(entry.name, []).append(entry.requirement)
    env = dict(markers)
    seen: set[tuple[str, frozenset[str]]] = set()
    # (requirement, marker still to check): dependencies_of already evaluated its markers
    todo: list[tuple[Any, bool]] = [(e.requirement, True) for e in request.requirements]
    needed: set[str] = set()
    while todo:
        req, check = todo.pop()
        if check and req.marker is not None and not _marker_ok(req.marker, env):
            continue
        if req.url:
            return None
        name = canonicalize_name(req.name)
        dist = installed.get(name)
        if dist is None:
            return None
        try:
            version = Version(dist.version)
        except InvalidVersion:
            return None
        extra_pins = pins.get(name, [])
        specs = extra_pins if name in overridden else [req, *extra_pins]
        if not all(r.specifier.contains(version, prereleases=True) for r in specs):
            return None
        needed.add(name)
        key = (name, frozenset(canonicalize_name(e) for e in req.extras))
        if key in seen or request.no_deps:
            continue
        seen.add(key)
        try:
            meta = dist.metadata()
        except KeaError:
            return None
        todo += [(dep, False) for dep in dependencies_of(meta, req.extras, markers)]
    return len(needed)


def _override_names(request: Request) -> frozenset[str]:
    return frozenset(e.name for e in request.overrides)


def _marker_ok(marker: Any, env: dict[str, str]) -> bool:
    env["extra"] = ""
    try:
        return bool(marker.evaluate(env))
    except Exception:
        return False


# -- options -------------------------------------------------------------------------------------


class InstallOptions(msgspec.Struct):
    prerelease: str = "if-necessary-or-explicit"
    resolution: str = "highest"
    exclude_newer: Any = None  # datetime | None
    only_binary: tuple[str, ...] = ()
    no_binary: tuple[str, ...] = ()
    link_mode: str | None = None
    compile_bytecode: bool = False
    show_progress: bool = False

    @classmethod
    def from_params(cls, params: dict[str, Any], settings: Settings) -> InstallOptions:
        import sys

        extra = settings.extra
        prerelease = params.get("prerelease") or extra.get("prerelease")
        if params.get("pre"):
            prerelease = "allow"
        compile_bytecode = params.get("compile_bytecode")
        if compile_bytecode is None:
            compile_bytecode = bool(extra.get("compile-bytecode", False))
        raw_newer = params.get("exclude_newer") or settings.env.get("KEA_EXCLUDE_NEWER")
        raw_newer = raw_newer or extra.get("exclude-newer")
        return cls(
            prerelease=prerelease or "if-necessary-or-explicit",
            resolution=params.get("resolution") or extra.get("resolution") or "highest",
            exclude_newer=parse_exclude_newer(raw_newer) if raw_newer else None,
            only_binary=tuple(params.get("only_binary") or ()),
            no_binary=tuple(params.get("no_binary") or ()),
            link_mode=params.get("link_mode") or extra.get("link-mode"),
            compile_bytecode=bool(compile_bytecode),
            show_progress=(
                not settings.no_progress and settings.quiet == 0 and sys.stderr.isatty()
            ),
        )


def parse_exclude_newer(value: Any) -> Any:
    """``2024-03-01`` (end of that day, UTC) or an RFC 3339 timestamp → aware datetime."""
    from datetime import UTC, datetime, timedelta

    text = str(value).strip()
    try:
        if len(text) == 10:
            day = datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
            return day + timedelta(days=1) - timedelta(microseconds=1)
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(
            f"invalid --exclude-newer value {text!r}",
            hint="use a date (2024-03-01) or an RFC 3339 time (2024-03-01T12:00:00Z)",
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)
