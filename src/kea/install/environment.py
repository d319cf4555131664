"""Which environment a command targets, and facts about its interpreter.

Target selection (uv's order): ``--python PATH|VERSION``, else ``VIRTUAL_ENV``, else
``CONDA_PREFIX``, else a ``.venv`` in the working directory or a parent; ``--system`` allows the
first ``python3`` on ``PATH``. ``--target DIR`` and ``--prefix DIR`` keep the interpreter but
install into another directory.

Interpreter facts (version, marker environment, supported tags, sysconfig paths) come from running
the interpreter once with ``_probe.py`` (``packaging.tags`` evaluated inside it) and are cached on
disk, keyed by the interpreter path and its file's identity (mtime, size, inode).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import msgspec

from kea.digest import sha256, short
from kea.errors import KeaError

if TYPE_CHECKING:
    import subprocess

TargetKind = Literal["venv", "system", "target", "prefix"]
CACHE_BUCKET = "interpreters-v1"
_PLACEHOLDER = "@@KEA_PREFIX@@"


class Interpreter(msgspec.Struct, frozen=True):
    """What kea knows about a Python interpreter (all paths absolute strings)."""

    executable: str  # the path kea was given / found (not resolved: venvs symlink to the base)
    sys_executable: str
    version: tuple[int, int, int]
    python_full_version: str
    implementation: str
    prefix: str
    base_prefix: str
    is_venv: bool
    markers: dict[str, str]
    tags: list[str]
    paths: dict[str, str]
    prefix_paths: dict[str, str]
    headers: str
    sys_path: list[str]
    pyc_tag: str | None = None

    @property
    def version_str(self) -> str:
        return ".".join(str(p) for p in self.version)

    @property
    def display_name(self) -> str:
        impl = {"cpython": "CPython", "pypy": "PyPy", "graalpy": "GraalPy"}
        return f"{impl.get(self.implementation, self.implementation)} {self.python_full_version}"


class _CacheEntry(msgspec.Struct):
    key: list[int]
    info: Interpreter


class Scheme(msgspec.Struct, frozen=True):
    """Where each part of a wheel goes (headers: the directory that gets ``<dist name>/``)."""

    purelib: Path
    platlib: Path
    scripts: Path
    data: Path
    headers: Path

    def roots(self) -> list[Path]:
        """purelib and platlib, once each: where ``*.dist-info`` directories live."""
        out = [self.purelib]
        if os.path.realpath(self.platlib) != os.path.realpath(self.purelib):
            out.append(self.platlib)
        return out


class Target(msgspec.Struct, frozen=True):
    """The environment a command installs into or inspects."""

    interpreter: Interpreter
    scheme: Scheme
    kind: TargetKind
    extra_roots: list[Path] = msgspec.field(default_factory=list)  # read-only: other sys.path dirs

    @property
    def python(self) -> Path:
        return Path(self.interpreter.executable)

    @property
    def site_packages(self) -> Path:
        return self.scheme.purelib

    def roots(self) -> list[Path]:
        return self.scheme.roots()


# -- interpreter facts ------------------------------------------------------------------------


def default_cache_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_cache_dir("kea")) / CACHE_BUCKET


def _identity(executable: str) -> list[int]:
    """What the facts of ``executable`` depend on, besides its path: the interpreter binary
    itself (symlinks followed) and the content of the ``pyvenv.cfg`` next to it, if any.

    Not the venv's symlink: a venv made again at the same path for the same interpreter (as
    benchmarks and CI do before every run) has the same facts, and must not cost a probe of
    the interpreter each time. Another base interpreter, an upgraded one, or other venv
    options (``pyvenv.cfg``: ``home``, ``include-system-site-packages``) ask again.
    """
    return _identity_and_cfg(executable)[0]


def _identity_and_cfg(executable: str) -> tuple[list[int], str | None]:
    """``_identity``, and the path of the ``pyvenv.cfg`` whose content it holds (or None)."""
    st = os.stat(executable)
    cfg, digest = _venv_cfg(executable)
    return [st.st_mtime_ns, st.st_size, st.st_ino, digest], cfg


def _venv_cfg(executable: str) -> tuple[str | None, int]:
    """The ``pyvenv.cfg`` Python would read for ``executable`` (in its directory or the
    parent) and 64 bits of the sha256 of its content; (None, 0) when there is none."""
    bindir = os.path.dirname(executable)
    for directory in (bindir, os.path.dirname(bindir)):
        path = os.path.join(directory, "pyvenv.cfg")
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError:
            continue
        return path, short(data)
    return None, 0


# The pyvenv.cfg each answer of ``query_interpreter`` this run was for, by executable: its path
# and the digest of the content the answer holds for (``cfg_read``).
_CFG_READ: dict[str, tuple[str, int]] = {}


def cfg_read(executable: str) -> tuple[str, int] | None:
    """The pyvenv.cfg (path, 64-bit digest of its content) that the facts this run got for
    ``executable`` hold for, or None. The no-op stamp keeps it: a pyvenv.cfg changed less than
    2 s before is then vouched for by that content, the content the answer came from."""
    return _CFG_READ.get(os.path.abspath(executable))


def _packaging_dir() -> str:
    import packaging

    return str(Path(packaging.__file__).resolve().parent.parent)


def _cache_file(exe: str, bucket: Path) -> Path:
    return bucket / (sha256(exe.encode()).hexdigest()[:24] + ".json")


def _cached(exe: str, key: list[int], cache_file: Path) -> Interpreter | None:
    try:
        entry = msgspec.json.decode(cache_file.read_bytes(), type=_CacheEntry)
    except (OSError, msgspec.DecodeError, msgspec.ValidationError):
        return None
    return entry.info if entry.key == key and entry.info.executable == exe else None


def query_interpreter(executable: str | Path, cache_dir: Path | None = None) -> Interpreter:
    """Facts about ``executable``: from the cache when its file is unchanged, else by running it
    (or from the probe ``probe_in_background`` started).

    ``cache_dir`` is the bucket directory itself (default: the user cache's ``interpreters-v1``).
    """
    exe = os.path.abspath(os.fspath(executable))
    try:
        key, cfg = _identity_and_cfg(exe)
    except OSError:
        raise KeaError(f"no Python interpreter at {exe}") from None
    _CFG_READ.pop(exe, None)
    bucket = cache_dir if cache_dir is not None else default_cache_dir()
    cache_file = _cache_file(exe, bucket)
    cached = _cached(exe, key, cache_file)
    if cached is not None:
        if cfg is not None:
            _CFG_READ[exe] = (cfg, key[3])
        return cached
    info = _run_probe(exe, key)
    if not _is_the_interpreter(exe, info.sys_executable):
        # A launcher (a pyenv shim, a wrapper script) picks its interpreter anew on every run,
        # from things its file does not show (PYENV_VERSION, .python-version): never cached.
        return info
    try:
        if _identity(exe) != key:  # changed while it ran: the answer may be of either state
            return info
    except OSError:
        return info
    if cfg is not None:
        _CFG_READ[exe] = (cfg, key[3])
    try:
        bucket.mkdir(parents=True, exist_ok=True)
        tmp = cache_file.with_name(f".{cache_file.name}.{os.getpid()}.tmp")
        tmp.write_bytes(msgspec.json.encode(_CacheEntry(key, info)))
        os.replace(tmp, cache_file)
    except OSError:
        pass  # a read-only cache only costs speed
    return info


def _is_the_interpreter(exe: str, reported: str) -> bool:
    """Whether running ``exe`` runs itself: the interpreter reports ``exe`` (a venv's
    ``bin/python`` reports that path) or the same file behind symlinks."""
    if not reported:
        return False
    return reported == exe or os.path.realpath(reported) == os.path.realpath(exe)


# Probes started ahead of their query (``probe_in_background``), by absolute executable path,
# with the identity (``_identity``) the interpreter had when each started.
_STARTED: dict[str, tuple[subprocess.Popen[bytes], list[int]]] = {}

# Work for kea's own thread while it waits for a probe (set by the CLI, see ``_run_probe``): it
# is called with a function that tells whether the probe still runs, and should stop soon
# after it no longer does.
while_probing: Callable[[Callable[[], bool]], None] | None = None


def probe_in_background(executable: str | Path, cache_dir: Path) -> None:
    """Start probing ``executable`` now, in its own process, unless its facts are cached in
    ``cache_dir``: the ``query_interpreter`` that follows collects the answer.

    For the first run against a new environment (or with an empty cache), where the probe is
    about 45 ms that kea would otherwise wait for after reading its requirements. A guess that
    turns out wrong (another interpreter is queried) only costs the background process; any
    failure to start is left for the query to meet and report.
    """
    exe = os.path.abspath(os.fspath(executable))
    if exe in _STARTED:
        return
    try:
        key = _identity(exe)
        if _cached(exe, key, _cache_file(exe, cache_dir)) is not None:
            return
        _STARTED[exe] = (_start_probe(exe), key)
    except OSError:
        return


def _start_probe(exe: str) -> subprocess.Popen[bytes]:
    import subprocess

    probe = Path(__file__).with_name("_probe.py")
    return subprocess.Popen(
        [exe, "-I", str(probe), _packaging_dir()],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )


def _run_probe(exe: str, key: list[int]) -> Interpreter:
    """The facts of ``exe`` whose identity is ``key``: from the probe started ahead when it
    started on that same identity (else that one is ended, unread), or from a new probe."""
    import subprocess

    ahead = _STARTED.pop(exe, None)
    proc = None
    if ahead is not None:
        if ahead[1] == key:
            proc = ahead[0]
        else:  # the interpreter or its pyvenv.cfg changed since it started
            ahead[0].kill()
            ahead[0].communicate()
    try:
        proc = proc or _start_probe(exe)
    except OSError as e:
        raise KeaError(f"cannot run Python interpreter {exe}: {e.strerror}") from None
    if while_probing is not None and proc.poll() is None:
        try:
            while_probing(lambda: proc.poll() is None)
        except Exception:  # only ever a head start: the run meets the same failure later
            pass
    try:
        stdout, stderr = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise KeaError(f"Python interpreter {exe} did not answer within 60s") from None
    hint = "--python takes a Python 3 interpreter, the directory of a venv, or a version"
    if proc.returncode != 0:
        last = (stderr.decode(errors="replace").strip().splitlines() or ["no output"])[-1]
        raise KeaError(f"cannot query Python interpreter {exe}: {last}", hint=hint)
    lines = stdout.strip().splitlines()
    if not lines:  # /bin/true, say
        raise KeaError(f"cannot query Python interpreter {exe}: it printed nothing", hint=hint)
    try:
        raw = msgspec.json.decode(lines[-1])
        raw["executable"] = exe
        return msgspec.convert(raw, Interpreter)
    except (TypeError, msgspec.DecodeError, msgspec.ValidationError) as e:
        raise KeaError(
            f"cannot query Python interpreter {exe}: bad answer ({e})", hint=hint
        ) from None


# -- finding interpreters ---------------------------------------------------------------------


def _which(name: str, env: Mapping[str, str]) -> bool:
    import shutil  # not at module level: shutil pulls bz2/lzma/fnmatch into every command

    return shutil.which(name, path=env.get("PATH")) is not None


_VERSION_RE = re.compile(r"^(?:(cpython|python|py|cp)[-@]?)?(3(?:\.\d+){0,2})$", re.I)


def venv_python(prefix: Path) -> Path:
    if os.name == "nt":
        return prefix / "Scripts" / "python.exe"
    return prefix / "bin" / "python"


def is_venv_dir(path: Path) -> bool:
    return (path / "pyvenv.cfg").is_file()


def looks_like_path(request: str) -> bool:
    return os.sep in request or "/" in request or request.startswith(".") or Path(request).exists()


def find_python(
    request: str | None,
    *,
    env: Mapping[str, str] | None = None,
    cache_dir: Path | None = None,
) -> Interpreter:
    """The interpreter for ``--python`` (a path, a venv directory, ``3.12``, ``python3.12``),
    or with ``request=None`` the first ``python3``/``python`` on PATH."""
    env = os.environ if env is None else env
    if request and looks_like_path(request):
        path = Path(request).expanduser()
        if path.is_dir():
            path = venv_python(path)
        if not path.exists():
            raise KeaError(f"no Python interpreter at {request}")
        return query_interpreter(path, cache_dir)

    wanted: tuple[int, ...] | None = None
    names: list[str] = ["python3", "python"]
    if request:
        m = _VERSION_RE.match(request.strip())
        if m:
            wanted = tuple(int(p) for p in m.group(2).split("."))
            names = [f"python{wanted[0]}.{wanted[1]}"] if len(wanted) > 1 else []
            names += ["python3", "python"]
        elif _which(request, env):
            names = [request]
        else:
            raise KeaError(
                f"invalid --python request {request!r}",
                hint="pass a path to an interpreter, or a version such as 3.12",
            )

    candidates: list[str] = []
    for name in names:
        for directory in (env.get("PATH") or "").split(os.pathsep):
            if not directory:
                continue
            exe = os.path.join(directory, name)
            if os.path.isfile(exe) and os.access(exe, os.X_OK) and exe not in candidates:
                candidates.append(exe)
    if wanted is not None:
        pyenv_root = Path(env.get("PYENV_ROOT") or Path(env.get("HOME", "~")) / ".pyenv")
        versions = pyenv_root.expanduser() / "versions"
        if versions.is_dir():
            for d in sorted(versions.iterdir(), reverse=True):
                exe = str(d / "bin" / "python3")
                if os.path.isfile(exe) and exe not in candidates:
                    candidates.append(exe)

    for exe in candidates:
        try:
            info = query_interpreter(exe, cache_dir)
        except KeaError:
            continue  # e.g. a pyenv shim for a version that is not selected
        if wanted is None or tuple(info.version[: len(wanted)]) == wanted:
            return info
    if request:
        raise KeaError(f"no interpreter found for Python {request}")
    raise KeaError("no Python interpreter found on PATH")


def check_externally_managed(target: Target) -> None:
    """Refuse to change a system interpreter that its distributor marks as externally managed
    (PEP 668: an ``EXTERNALLY-MANAGED`` file in its stdlib directory), as pip and uv do.
    A venv, ``--target`` and ``--prefix`` are never refused."""
    if target.kind != "system":
        return
    stdlib = target.interpreter.paths.get("stdlib")
    marker = Path(stdlib) / "EXTERNALLY-MANAGED" if stdlib else None
    if marker is None or not marker.is_file():
        return
    raise KeaError(
        f"the interpreter at {target.interpreter.sys_executable or target.interpreter.executable}"
        " is externally managed (PEP 668): its packages belong to the system's package manager",
        hint="install into a venv (kea venv), or pass --break-system-packages",
    )


def _venv_matching(
    request: str, env: Mapping[str, str], cwd: Path, cache_dir: Path | None
) -> Interpreter | None:
    """The active or nearby venv (``find_venv``) when its Python is the version ``request``
    asks for (``3.11``, ``python3.11``); None otherwise, or for a request that names no
    version."""
    m = _VERSION_RE.match(request.strip())
    venv = find_venv(env, cwd)
    if m is None or venv is None or not venv_python(venv).exists():
        return None
    wanted = tuple(int(p) for p in m.group(2).split("."))
    info = query_interpreter(venv_python(venv), cache_dir)
    return info if info.version[: len(wanted)] == wanted else None


def find_venv(env: Mapping[str, str], cwd: Path) -> Path | None:
    """VIRTUAL_ENV, else CONDA_PREFIX, else ``.venv`` in ``cwd`` or a parent."""
    for var in ("VIRTUAL_ENV", "CONDA_PREFIX"):
        value = env.get(var)
        if value:
            return Path(value)
    for directory in (cwd, *cwd.parents):
        candidate = directory / ".venv"
        if is_venv_dir(candidate):
            return candidate
    return None


def scheme_of(info: Interpreter) -> Scheme:
    p = info.paths
    return Scheme(
        purelib=Path(p["purelib"]),
        platlib=Path(p.get("platlib", p["purelib"])),
        scripts=Path(p["scripts"]),
        data=Path(p["data"]),
        headers=Path(info.headers),
    )


def resolve_target(
    *,
    python: str | None = None,
    system: bool = False,
    target: str | Path | None = None,
    prefix: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    cache_dir: Path | None = None,
    mutable: bool = True,
) -> Target:
    """The environment a ``kea pip`` command acts on (see the module docstring); ``mutable``:
    the command changes it."""
    env = os.environ if env is None else env
    cwd = cwd or Path.cwd()
    if target is not None and prefix is not None:
        raise KeaError("--target and --prefix cannot be used together")
    if python is not None:
        by_version = not looks_like_path(python)
        nearby = _venv_matching(python, env, cwd, cache_dir) if by_version and not system else None
        info = nearby or find_python(python, env=env, cache_dir=cache_dir)
        kind: TargetKind = "venv" if info.is_venv else "system"
        if (
            kind == "system"
            and by_version
            and mutable
            and not system
            and target is None
            and prefix is None
        ):
            # As uv: a version (or a name) finds a venv, or needs --system to change the
            # interpreter of the machine (reading it needs nothing); a path to an interpreter
            # is explicit enough.
            raise KeaError(
                f"No virtual environment found for Python {python}; pass `--system` to use"
                f" {info.sys_executable or info.executable}",
                hint=f"or create one: kea venv --python {python}",
            )
    elif system:
        info = find_python(None, env=env, cache_dir=cache_dir)
        kind = "venv" if info.is_venv else "system"
    else:
        venv = find_venv(env, cwd)
        if venv is None:
            if target is not None or prefix is not None:
                info = find_python(None, env=env, cache_dir=cache_dir)
                kind = "system"
            else:
                raise KeaError(
                    "No virtual environment found; run `kea venv` to create an environment, "
                    "or pass `--system` to install into a non-virtual environment"
                )
        else:
            exe = venv_python(venv)
            if not exe.exists():
                raise KeaError(f"virtual environment {venv} has no interpreter at {exe}")
            info = query_interpreter(exe, cache_dir)
            kind = "venv"

    if target is not None:
        root = Path(target).absolute()
        scheme = Scheme(
            purelib=root,
            platlib=root,
            scripts=root / "bin",
            data=root,
            headers=root / "include",
        )
        return Target(info, scheme, "target")
    if prefix is not None:
        root = Path(prefix).absolute()
        pp = {k: Path(v.replace(_PLACEHOLDER, str(root))) for k, v in info.prefix_paths.items()}
        scheme = Scheme(
            purelib=pp["purelib"],
            platlib=pp.get("platlib", pp["purelib"]),
            scripts=pp["scripts"],
            data=pp["data"],
            headers=pp.get("include", root / "include"),
        )
        return Target(info, scheme, "prefix")
    scheme = scheme_of(info)
    extra = [Path(p) for p in info.sys_path if Path(p) not in scheme.roots()]
    return Target(info, scheme, kind, extra_roots=extra)
