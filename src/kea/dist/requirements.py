"""Requirements files (pip's format, as uv reads it) and requirement strings.

``parse_requirements(path)`` reads a file with its nested ``-r``/``-c`` files (paths relative to
the file that names them) and returns a ``RequirementsSet``: the requirements, the constraints,
the editables, the index options the files carry, and the per-requirement ``--hash`` values.

Every line is read the way pip reads it: ``\\`` joins physical lines, ``#`` starts a comment at the
start of a line or after whitespace, ``${VAR}`` is replaced by the environment variable (unknown
names are left as they are). Errors name ``file:line`` and, for a malformed requirement, the
column; they are ``KeaError`` (one line and a hint), never a traceback.

This module reads files only; it never touches the network.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

import msgspec

from kea.dist.names import canonicalize_name

from kea.digest import sha256
from kea.dist import parsed
from kea.auth.redact import redact_text, redact_url
from kea.errors import KeaError

if TYPE_CHECKING:
    from packaging.requirements import Requirement

__all__ = [
    "Entry",
    "RequirementsError",
    "RequirementsSet",
    "check_hashes",
    "parse_requirement",
    "parse_requirements",
    "parse_requirements_text",
]

HASH_ALGORITHMS = ("sha256", "sha384", "sha512")
_ENV_RE = re.compile(r"\$\{([A-Za-z0-9_]+)\}")
_COMMENT_RE = re.compile(r"(^|\s+)#.*$")
_WHEEL_RE = re.compile(
    r"^(?P<name>[^\s-]+?)-(?P<version>[^\s-]+?)(-(?P<build>\d[^-]*))?-[^\s-]+?-[^\s-]+?-[^\s-]+?\.whl$"
)
_SDIST_SUFFIXES = (".tar.gz", ".zip", ".tar.bz2", ".tgz", ".tar.xz", ".tar")


class RequirementsError(KeaError):
    """A requirements file or requirement string that cannot be read (exit 1)."""


class Entry(msgspec.Struct, frozen=True):
    """One requirement: the parsed requirement, where it came from, and its allowed hashes.

    ``hashes`` holds ``"algo:hexdigest"`` strings (lower-case). ``source`` is ``file:line`` or
    ``"command line"``. ``editable`` entries keep their raw target in ``raw``.
    """

    requirement: Requirement
    source: str
    hashes: tuple[str, ...] = ()
    editable: bool = False
    raw: str = ""

    @property
    def name(self) -> str:
        return canonicalize_name(self.requirement.name)

    @property
    def is_pinned(self) -> bool:
        """``==X`` (without a wildcard) or ``===X``: exactly one version allowed."""
        specs = list(self.requirement.specifier)
        return len(specs) == 1 and (
            specs[0].operator == "==="
            or (specs[0].operator == "==" and "*" not in specs[0].version)
        )


class RequirementsSet(msgspec.Struct):
    """What one or more requirements files (and the command line) ask for."""

    requirements: list[Entry] = msgspec.field(default_factory=list)
    constraints: list[Entry] = msgspec.field(default_factory=list)
    editables: list[Entry] = msgspec.field(default_factory=list)
    index_url: str | None = None
    extra_index_urls: list[str] = msgspec.field(default_factory=list)
    find_links: list[str] = msgspec.field(default_factory=list)
    no_index: bool = False
    require_hashes: bool = False
    pre: bool = False
    only_binary: list[str] = msgspec.field(default_factory=list)
    no_binary: list[str] = msgspec.field(default_factory=list)
    trusted_hosts: list[str] = msgspec.field(default_factory=list)
    files: list[Path] = msgspec.field(default_factory=list)
    # What was actually parsed, for the no-op fast path (kea.cli.fastpath): (path as opened,
    # resolved path, sha256 of the bytes read) of each file, and each ``${VAR}`` name expanded.
    digests: list[tuple[str, str, str]] = msgspec.field(default_factory=list)
    env_names: list[str] = msgspec.field(default_factory=list)

    def extend(self, other: RequirementsSet) -> None:
        """Merge ``other`` into this set (later index-url wins, lists are appended)."""
        self.requirements += other.requirements
        self.constraints += other.constraints
        self.editables += other.editables
        if other.index_url is not None:
            self.index_url = other.index_url
        self.extra_index_urls += [
            u for u in other.extra_index_urls if u not in self.extra_index_urls
        ]
        self.find_links += [u for u in other.find_links if u not in self.find_links]
        self.no_index = self.no_index or other.no_index
        self.require_hashes = self.require_hashes or other.require_hashes
        self.pre = self.pre or other.pre
        self.only_binary += other.only_binary
        self.no_binary += other.no_binary
        self.trusted_hosts += other.trusted_hosts
        self.files += [f for f in other.files if f not in self.files]
        self.digests += [d for d in other.digests if d not in self.digests]
        self.env_names += [n for n in other.env_names if n not in self.env_names]


# -- requirement strings ---------------------------------------------------------------------


def parse_requirement(text: str, source: str = "command line", *, column_offset: int = 0) -> Entry:
    """Parse one requirement: ``name[extras] spec ; marker``, ``name @ url``, or a wheel path/URL.

    A wheel file path or URL (``./pkg-1.0-py3-none-any.whl``) becomes ``pkg @ file:///...``; a path
    relative to the working directory for the command line, else to the file it appears in (the
    caller passes it already resolved through ``base``). A source tree or sdist is refused:
    building from source is not supported yet.
    """
    return _parse_requirement(text, source, Path.cwd(), column_offset)


def _parse_requirement(text: str, source: str, base: Path, column_offset: int = 0) -> Entry:
    text = text.strip()
    direct = _direct_reference(text, base, source)
    if direct is not None:
        return Entry(requirement=direct, source=source, raw=text)
    try:
        req = parsed.requirement(text)
    except parsed.InvalidRequirement as e:
        raise _invalid(text, str(e), source, column_offset) from None
    if req.url:
        _check_url_target(req.url, source)
    return Entry(requirement=req, source=source, raw=text)


def _invalid(text: str, detail: str, source: str, column_offset: int) -> RequirementsError:
    lines = detail.splitlines()
    reason = lines[0].strip() if lines else "invalid syntax"
    column: int | None = None
    if len(lines) >= 3:
        caret = lines[-1]
        if "^" in caret:
            # packaging indents the echoed requirement and the caret line by four spaces.
            column = caret.index("^") - 4 + 1
    reason = reason[:1].lower() + reason[1:]
    where = source
    if column is not None and column >= 1:
        where = f"{source}, column {column + column_offset}"
    shown = redact_text(text)
    if len(shown) > 200:  # one line: a 100 KB requirement is not echoed whole
        shown = f"{shown[:80]}...{shown[-20:]}"
    return RequirementsError(
        f"invalid requirement {shown!r} ({where}): {reason}",
        hint=(
            'a requirement looks like `name[extra]>=1.0; python_version >= "3.11"` '
            "or `name @ https://host/name-1.0-py3-none-any.whl`"
        ),
    )


def _looks_like_path(text: str) -> bool:
    if text.startswith((".", "/", "~")) or os.sep in text or (os.altsep and os.altsep in text):
        return True
    return text.endswith(".whl") or text.endswith(_SDIST_SUFFIXES)


def _direct_reference(text: str, base: Path, source: str) -> Requirement | None:
    """A bare URL or path (not ``name @ url``) as a Requirement, or None for a named one."""
    if " @ " in text or text.startswith("@"):
        return None
    target = text.split(";", 1)[0].strip()
    marker = text.split(";", 1)[1].strip() if ";" in text else ""
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", target):
        url = target
        path = _file_url_path(url)
        filename = path.name if path is not None else unquote(urlsplit(url).path.rsplit("/", 1)[-1])
    elif _looks_like_path(target) and not re.search(r"[<>=!~\[]", target):
        path = (base / Path(target).expanduser()).resolve()
        url = path.as_uri()
        filename = path.name
        if path.is_dir():
            raise RequirementsError(
                f"building from source is not supported yet: {path} ({source})",
                hint="install a wheel of it instead (pip wheel / uv build), or use its name",
            )
        if not path.exists():
            raise RequirementsError(f"no such file: {path} ({source})")
    else:
        return None
    m = _WHEEL_RE.match(filename.split("#", 1)[0])
    if not m:
        if filename.endswith(_SDIST_SUFFIXES) or path is not None:
            raise RequirementsError(
                f"building from source is not supported yet: {redact_url(filename)} ({source})",
                hint="point to a wheel (.whl) instead",
            )
        raise RequirementsError(
            f"cannot tell the package name of {redact_url(url)} ({source})",
            hint="write it as `name @ URL`",
        )
    name = m.group("name")
    spec = f"{name} @ {url}" + (f" ; {marker}" if marker else "")
    try:
        return parsed.requirement(spec)
    except parsed.InvalidRequirement as e:
        raise _invalid(text, str(e), source, 0) from None


def _file_url_path(url: str) -> Path | None:
    parts = urlsplit(url)
    if parts.scheme.lower() != "file":
        return None
    return Path(unquote(parts.path))


def _check_url_target(url: str, source: str) -> None:
    path = urlsplit(url).path
    name = unquote(path.rsplit("/", 1)[-1])
    if url.startswith(("git+", "hg+", "svn+", "bzr+")):
        raise RequirementsError(
            f"building from source is not supported yet: {redact_url(url)} ({source})",
            hint="point to a wheel (.whl) instead",
        )
    if name.endswith(_SDIST_SUFFIXES):
        raise RequirementsError(
            f"building from source is not supported yet: {redact_url(name)} ({source})",
            hint="point to a wheel (.whl) instead",
        )


# -- files -----------------------------------------------------------------------------------


def _logical_lines(text: str) -> Iterable[tuple[int, str]]:
    """Yield (first physical line number, line) with continuations joined and comments removed."""
    buffer: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        if not buffer:
            start = number
        if raw.endswith("\\") and not raw.endswith("\\\\"):
            # A comment line inside a continuation ends nothing (pip joins across it).
            buffer.append(raw[:-1])
            continue
        buffer.append(raw)
        line = "".join(buffer)
        buffer = []
        yield start, _COMMENT_RE.sub("", line)
    if buffer:
        yield start, _COMMENT_RE.sub("", "".join(buffer))


def _expand(line: str, env: Mapping[str, str]) -> str:
    return _ENV_RE.sub(lambda m: env.get(m.group(1), m.group(0)), line)


_VALUE_OPTIONS = {
    "-r": "requirement",
    "--requirement": "requirement",
    "-c": "constraint",
    "--constraint": "constraint",
    "-e": "editable",
    "--editable": "editable",
    "-i": "index_url",
    "--index-url": "index_url",
    "--extra-index-url": "extra_index_url",
    "-f": "find_links",
    "--find-links": "find_links",
    "--only-binary": "only_binary",
    "--no-binary": "no_binary",
    "--trusted-host": "trusted_host",
    "--hash": "hash",
    "--config-settings": "ignored",
    "--global-option": "ignored",
    "--install-option": "ignored",
}
_FLAG_OPTIONS = {
    "--no-index": "no_index",
    "--require-hashes": "require_hashes",
    "--pre": "pre",
    "--prefer-binary": "ignored",
    "--use-feature": "ignored",
}


def _split_options(line: str) -> tuple[str, list[str]]:
    """Split ``requirement --opt=v --opt v`` into the requirement text and option tokens."""
    for m in re.finditer(r"\S+", line):
        if m.group(0).startswith("-"):
            return line[: m.start()].strip(), line[m.start() :].split()
    return line.strip(), []


def _parse_options(tokens: list[str], where: str) -> list[tuple[str, str]]:
    """Turn option tokens into (key, value) pairs; a flag's value is ""."""
    out: list[tuple[str, str]] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        name, eq, value = token.partition("=")
        if name in _FLAG_OPTIONS:
            if eq:
                raise RequirementsError(f"{where}: option {name} takes no value")
            out.append((_FLAG_OPTIONS[name], ""))
            i += 1
            continue
        key = _VALUE_OPTIONS.get(name)
        if key is None and not eq and len(name) > 2 and name[:2] in _VALUE_OPTIONS:
            # -rfile, -cfile, -ihttps://...: pip's short form without a space
            key, value, eq = _VALUE_OPTIONS[name[:2]], name[2:], "="
        if key is None:
            raise RequirementsError(
                f"{where}: unknown option {redact_text(name)}",
                hint="kea reads -r, -c, -e, -i, --extra-index-url, -f, --no-index, --hash, "
                "--require-hashes, --pre, --only-binary, --no-binary",
            )
        if not eq:
            if i + 1 >= len(tokens):
                raise RequirementsError(f"{where}: option {name} needs a value")
            value = tokens[i + 1]
            i += 2
        else:
            i += 1
        if not value:
            raise RequirementsError(f"{where}: option {name} needs a value")
        out.append((key, value))
    return out


def _check_hash(value: str, where: str) -> str:
    algo, sep, digest = value.partition(":")
    algo = algo.lower()
    if not sep or algo not in HASH_ALGORITHMS:
        raise RequirementsError(
            f"{where}: invalid hash {value!r}",
            hint="write --hash=sha256:<64 hex digits>",
        )
    lengths = {"sha256": 64, "sha384": 96, "sha512": 128}
    if not re.fullmatch(r"[0-9a-fA-F]+", digest) or len(digest) != lengths[algo]:
        raise RequirementsError(
            f"{where}: invalid {algo} digest {digest!r}",
            hint=f"a {algo} digest is {lengths[algo]} hexadecimal digits",
        )
    return f"{algo}:{digest.lower()}"


def parse_requirements(
    path: str | Path,
    *,
    constraint: bool = False,
    env: Mapping[str, str] | None = None,
    _stack: tuple[Path, ...] = (),
) -> RequirementsSet:
    """Read a requirements file (``constraint=True``: a constraints file) and the files it names."""
    env = os.environ if env is None else env
    raw_path = str(path)
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", raw_path) and not raw_path.startswith("file:"):
        raise RequirementsError(
            f"remote requirements files are not supported: {redact_url(raw_path)}",
            hint="download it first and pass the local path",
        )
    if raw_path.startswith("file:"):
        file_path = _file_url_path(raw_path) or Path(raw_path)
    else:
        file_path = Path(raw_path).expanduser()
    kind = "constraints" if constraint else "requirements"
    where_from = f" (from {_stack[-1]})" if _stack else ""
    try:
        resolved = file_path.resolve()
        data = resolved.read_bytes()
        # as read_text would: universal newlines
        text = data.decode("utf-8-sig").replace("\r\n", "\n").replace("\r", "\n")
    except FileNotFoundError:
        raise RequirementsError(
            f"{kind} file not found: {file_path}{where_from}",
            hint="check the path; -r/-c paths inside a file are relative to that file",
        ) from None
    except IsADirectoryError:
        raise RequirementsError(f"{kind} file is a directory: {file_path}{where_from}") from None
    except UnicodeDecodeError:
        raise RequirementsError(f"{kind} file is not UTF-8 text: {file_path}{where_from}") from None
    except OSError as e:
        raise RequirementsError(
            f"cannot read {kind} file {file_path}: {e.strerror}{where_from}"
        ) from None
    if resolved in _stack:
        raise RequirementsError(f"{kind} file {file_path} includes itself (through {_stack[-1]})")
    out = parse_requirements_text(
        text,
        filename=str(file_path),
        base=resolved.parent,
        constraint=constraint,
        env=env,
        _stack=(*_stack, resolved),
    )
    digest = (str(file_path), str(resolved), sha256(data).hexdigest())
    out.digests.insert(0, digest)
    return out


def parse_requirements_text(
    text: str,
    *,
    filename: str = "<requirements>",
    base: Path | None = None,
    constraint: bool = False,
    env: Mapping[str, str] | None = None,
    _stack: tuple[Path, ...] = (),
) -> RequirementsSet:
    """Parse the text of a requirements file; ``base`` is the directory paths are relative to."""
    env = os.environ if env is None else env
    base = base or Path.cwd()
    out = RequirementsSet()
    if _stack:
        out.files.append(_stack[-1])
    for number, line in _logical_lines(text):
        for name in _ENV_RE.findall(line):
            if name not in out.env_names:
                out.env_names.append(name)
        expanded = _expand(line, env)
        if not expanded.strip():
            continue
        where = f"{filename}:{number}"
        req_text, option_tokens = _split_options(expanded)
        options = _parse_options(option_tokens, where)
        hashes: list[str] = []
        for key, value in options:
            if key == "hash":
                if not req_text:
                    raise RequirementsError(
                        f"{where}: --hash must follow a requirement on the same line"
                    )
                hashes.append(_check_hash(value, where))
            elif key == "requirement":
                nested = parse_requirements(
                    _relative(value, base), constraint=constraint, env=env, _stack=_stack
                )
                out.extend(nested)
            elif key == "constraint":
                nested = parse_requirements(
                    _relative(value, base), constraint=True, env=env, _stack=_stack
                )
                out.extend(nested)
            elif key == "editable":
                out.editables.append(_editable(value, where, base))
            elif key == "index_url":
                out.index_url = _index_value(value, base)
            elif key == "extra_index_url":
                url = _index_value(value, base)
                if url not in out.extra_index_urls:
                    out.extra_index_urls.append(url)
            elif key == "find_links":
                link = _index_value(value, base)
                if link not in out.find_links:
                    out.find_links.append(link)
            elif key == "no_index":
                out.no_index = True
            elif key == "require_hashes":
                out.require_hashes = True
            elif key == "pre":
                out.pre = True
            elif key == "only_binary":
                out.only_binary += [v for v in value.split(",") if v]
            elif key == "no_binary":
                out.no_binary += [v for v in value.split(",") if v]
            elif key == "trusted_host":
                out.trusted_hosts.append(value)
        if not req_text:
            continue
        offset = len(expanded) - len(expanded.lstrip())
        entry = _parse_requirement(req_text, where, base, column_offset=offset)
        if hashes:
            entry = Entry(
                requirement=entry.requirement,
                source=entry.source,
                hashes=tuple(dict.fromkeys(hashes)),
                raw=entry.raw,
            )
        if constraint:
            if entry.requirement.extras:
                raise RequirementsError(
                    f"{where}: a constraint cannot name extras: {entry.raw!r}",
                    hint="constrain the package itself (drop the [extras])",
                )
            out.constraints.append(entry)
        else:
            out.requirements.append(entry)
    return out


def _relative(value: str, base: Path) -> str:
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", value) or value.startswith("file:"):
        return value
    p = Path(value).expanduser()
    return str(p if p.is_absolute() else base / p)


def _index_value(value: str, base: Path) -> str:
    """An index or find-links value: a URL as is, a local path made absolute."""
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", value):
        return value
    p = Path(value).expanduser()
    return str(p if p.is_absolute() else (base / p).resolve())


def _editable(value: str, where: str, base: Path) -> Entry:
    target = value.strip()
    name = "unknown"
    m = re.search(r"#egg=([A-Za-z0-9][A-Za-z0-9._-]*)", target)
    if m:
        name = m.group(1)
    elif not re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", target):
        name = Path(_relative(target, base)).name or "unknown"
    if not re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?", name):
        name = "unknown"
    return Entry(requirement=parsed.requirement(name), source=where, editable=True, raw=target)


# -- hash checking -----------------------------------------------------------------------------


def check_hashes(entries: Iterable[Entry], require_hashes: bool) -> bool:
    """Decide whether hash-checking mode is on, and check the entries allow it.

    Hash-checking mode is on with ``--require-hashes`` or as soon as any requirement carries a
    ``--hash``. In that mode every requirement must be pinned (``==X`` or ``===X``, or a direct
    URL) and carry at least one hash. Returns whether the mode is on.
    """
    items = list(entries)
    active = require_hashes or any(e.hashes for e in items)
    if not active:
        return False
    for e in items:
        if e.editable:
            raise RequirementsError(
                f"editable requirement {e.raw!r} cannot be installed in hash-checking mode "
                f"({e.source})"
            )
        if not e.requirement.url and not e.is_pinned:
            raise RequirementsError(
                f"in hash-checking mode every requirement must be pinned with ==: "
                f"{redact_text(str(e.requirement))!r} ({e.source})",
                hint="pin it (name==version) and add --hash=sha256:..., or drop --require-hashes",
            )
        if not e.hashes:
            raise RequirementsError(
                f"in hash-checking mode every requirement needs a --hash: "
                f"{redact_text(str(e.requirement))!r} ({e.source})",
                hint="add --hash=sha256:<digest> for each file that may be installed",
            )
        if not any(h.startswith("sha256:") for h in e.hashes):
            # Files are checked, and cached, by their sha256: an index lists it, and an
            # unpacked wheel in the cache is known by it. A sha384/sha512 value alone could not
            # be checked against either, and would fail later as a misleading mismatch.
            raise RequirementsError(
                f"kea checks --hash values by sha256, and {redact_text(str(e.requirement))!r} "
                f"has only {', '.join(sorted({h.partition(':')[0] for h in e.hashes}))} "
                f"({e.source})",
                hint="add its files' sha256 hashes (`pip hash FILE` prints one; "
                "`pip-compile --generate-hashes` writes them)",
            )
    return True
