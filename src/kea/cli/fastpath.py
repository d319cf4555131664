"""The no-op fast path of ``kea pip install``: answer from a stamp, before click is imported.

When a full ``kea pip install`` finds everything already installed (the no-op audit), it writes a
*stamp* (``kea.cli.fastpath_stamp``): what must still be true for the answer to hold, and the text
it printed. The next identical command checks the stamp here and, when every condition still
holds, prints the same text (with its own elapsed time) and exits 0, in a few milliseconds: no
click, packaging, msgspec, logging or asyncio is imported. Like git's index, any doubt (a stamp
missing, unreadable, of another format, any condition failing, any error) means the normal path
runs, unchanged.

The stamp's name is a hash of everything the answer can depend on that is not a file: kea's
version and location, the interpreter running kea, the exact arguments after ``kea``, the working
directory, the environment variables in ``KEY_ENV`` / ``KEY_ENV_PREFIXES`` and whether stderr is
a terminal. Its content lists the files: stat identities (mtime, size, inode, or absent) of the
config files and venv markers kea looks for, the target interpreter, the site-packages
directories and every ``*.dist-info/METADATA`` in them, the source files of the code that
answered; the sha256 of every requirements file read (nested ones included) and a salted one
of every ``${VAR}`` those files expand. A stamp is readable by its owner only.

A file changed within 2 seconds of the run that wrote the stamp ("racy", as git calls it) may
have changed again in the same tick of the file system's clock after the run read it, and its
stat identity would not show it. Such a file (a ``METADATA`` the install just before wrote, say)
has the sha256 of its content in the stamp too (of its sorted listing for a directory), taken
before the run read it; a hit reads and compares it. The target's pyvenv.cfg is read before
it can be watched; the digest of the content the interpreter's facts were for
(``kea.install.environment.cfg_read``) vouches for it instead. Once every such file is older
than 2 seconds, the hit that sees it rewrites the stamp without those digests: from then on, a
change can only come with a new mtime.

Stamps live in ``<cache dir>/fastpath-v1/``; the cache dir is found as settings would
(``--cache-dir``, ``KEA_CACHE_DIR``, the platform default on Linux and macOS), and the full path
writes a stamp only when its real cache dir is that same directory. ``KEA_NO_FASTPATH=1`` turns
the fast path off.

Only stdlib modules that CPython has already loaded at start-up (``os``, ``sys``), ``marshal`` and
a sha256 are imported here (not even ``__future__``: annotations that name types are strings):
this module is the whole cost of a hit.
"""

import os
import sys

TYPE_CHECKING = False  # typing is not imported on the fast path
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import Any

# 2: identities with the change time, salted env digests; 3: racy files' content; 4: the
# content digest of the pyvenv.cfg the interpreter's facts were for
FORMAT = 4
BUCKET = "fastpath-v1"

# Environment variables that can change what ``kea pip install`` does or prints, beyond KEA_*:
# - which environment is targeted: VIRTUAL_ENV, CONDA_PREFIX (target discovery), PATH and
#   PYENV_ROOT (interpreter search), HOME (``~`` in paths, the user config, the default cache);
# - where files are read: XDG_CONFIG_HOME (user config), XDG_CACHE_HOME (default cache), NETRC;
# - what is printed: NO_COLOR, FORCE_COLOR, CLICOLOR_FORCE, TERM (colour), and the locale and
#   encoding of stderr (LANG, LC_*, PYTHONIOENCODING, PYTHONUTF8 via the PYTHON prefix);
# - which code runs: PYTHONPATH, PYTHONHOME and the other PYTHON* variables.
# Proxy, TLS and credential variables (HTTP_PROXY, SSL_CERT_FILE, KEA_INDEX_*_PASSWORD...) are
# only used when the network is; KEA_* is hashed anyway (never stored).
KEY_ENV = (
    "VIRTUAL_ENV", "CONDA_PREFIX", "PATH", "PYENV_ROOT", "HOME", "XDG_CONFIG_HOME",
    "XDG_CACHE_HOME", "NETRC", "NO_COLOR", "FORCE_COLOR", "CLICOLOR_FORCE", "TERM", "LANG",
)  # fmt: skip
KEY_ENV_PREFIXES = ("KEA_", "PYTHON", "LC_")

# What main() was called with, for the stamp writer: the key is of these exact strings.
ARGV: list[str] | None = None


def sha256_hex(data: bytes) -> str:
    from kea.digest import sha256

    return str(sha256(data).hexdigest())


def option_value(args: "Sequence[str]", *names: str) -> str | None:
    """The last value given to the option spelled ``names`` (``--opt V``, ``--opt=V``, ``-o V``)
    before any ``--``; None when it is not given."""
    value: str | None = None
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            break
        if arg in names and i + 1 < len(args):
            value = args[i + 1]
            i += 2
            continue
        name, eq, given = arg.partition("=")
        if eq and name.startswith("--") and name in names:
            value = given
        i += 1
    return value


def cache_dir(args: "Sequence[str]", env: "Mapping[str, str]") -> str | None:
    """The absolute cache directory a run with these arguments uses, as settings would find it
    without a config file, or None when it cannot be told cheaply (then no fast path)."""
    value = option_value(args, "--cache-dir")
    if value is None:
        value = env.get("KEA_CACHE_DIR") or None
    if value is not None:
        return os.path.abspath(os.path.expanduser(value)) if value else None
    home = env.get("HOME", "")
    if sys.platform.startswith("linux"):
        xdg = env.get("XDG_CACHE_HOME", "")
        if xdg:
            return os.path.join(xdg, "kea") if xdg.startswith("/") else None
        return os.path.join(home, ".cache", "kea") if home.startswith("/") else None
    if sys.platform == "darwin" and not env.get("XDG_CACHE_HOME"):
        return os.path.join(home, "Library", "Caches", "kea") if home.startswith("/") else None
    return None


def stamp_key(args: "Sequence[str]", env: "Mapping[str, str]") -> str:
    """The stamp's name: a sha256 of everything besides files that the answer depends on."""
    from kea import __version__

    try:
        tty = sys.stderr.isatty()
    except (AttributeError, ValueError):
        tty = False
    picked = sorted(
        (k, v) for k, v in env.items() if k in KEY_ENV or k.startswith(KEY_ENV_PREFIXES)
    )
    parts = (
        FORMAT,
        __version__,
        os.path.dirname(os.path.abspath(__file__)),
        sys.executable,
        sys.version,
        os.getcwd(),
        tty,
        tuple(args),
        tuple(picked),
    )
    return sha256_hex(repr(parts).encode("utf-8", "surrogateescape"))


def stamp_path(args: "Sequence[str]", env: "Mapping[str, str]") -> str | None:
    """Where the stamp of a run with these arguments lives, or None (no fast path)."""
    directory = cache_dir(args, env)
    if directory is None:
        return None
    return os.path.join(directory, BUCKET, stamp_key(args, env))


def env_digest(key: str, name: str, value: str | None) -> str | None:
    """What a stamp keeps of the environment variable ``name`` (None: unset): a sha256 salted
    with the stamp's key and the name, so that no stamp holds a plain digest of a value that
    a dictionary could find (``${TOKEN}`` in a requirements file is a credential)."""
    if value is None:
        return None
    text = f"{key}\0{name}\0{value}"
    return sha256_hex(text.encode("utf-8", "surrogateescape"))


def _open_safely(path: str) -> tuple[int, int]:
    """(descriptor, mode) of ``path`` opened for reading, only when it is a regular file or a
    directory: a pipe (``--config-file`` a FIFO) is not even opened, since opening it would
    count as its reader, wake its writer and lose what it wrote; a terminal could become the
    session's. A path replaced between the look and the open is refused. OSError otherwise."""
    import stat  # loaded at start-up with os

    st = os.stat(path)
    if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
        raise OSError(f"not a regular file: {path}")
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    opened = os.fstat(fd)
    if (opened.st_dev, opened.st_ino) != (st.st_dev, st.st_ino):
        os.close(fd)
        raise OSError(f"replaced while read: {path}")
    return fd, opened.st_mode


def content_digest(key: str, path: str) -> str:
    """The sha256 of what kea reads of ``path`` (a file's bytes, a directory's sorted names),
    salted with the stamp's key as ``env_digest`` is (no digest in a stamp matches one made
    anywhere else; the stamp itself is its owner's only). OSError when it cannot be read, or
    is not a regular file or directory (``_open_safely``)."""
    import stat

    salt = key.encode() + b"\0"
    fd, mode = _open_safely(path)
    try:
        if stat.S_ISDIR(mode):
            joined = "\0".join(sorted(os.listdir(fd)))
            return "d" + sha256_hex(salt + joined.encode("utf-8", "surrogateescape"))
        with open(fd, "rb", closefd=False) as f:
            return "f" + sha256_hex(salt + f.read())
    finally:
        os.close(fd)


def cfg_digest(path: str) -> int:
    """The 64-bit digest of a regular file's content that ``kea.install.environment`` keys an
    interpreter's facts on (its pyvenv.cfg). OSError as ``_open_safely``, or for a directory."""
    import stat

    from kea.digest import short

    fd, mode = _open_safely(path)
    try:
        if not stat.S_ISREG(mode):
            raise OSError(f"not a regular file: {path}")
        with open(fd, "rb", closefd=False) as f:
            return short(f.read())
    finally:
        os.close(fd)


def elapsed(seconds: float) -> str:
    """uv's durations, as ``kea.cli.install_output.elapsed`` prints them."""
    if seconds < 1:
        return f"{max(0, round(seconds * 1000))}ms"
    return f"{seconds:.2f}s"


def check(stamp: "Any", key: str) -> tuple[str, str] | None:
    """The (before, after) text around the elapsed time when every condition of ``stamp`` holds."""
    if type(stamp) is not dict or stamp.get("format") != FORMAT or stamp.get("key") != key:
        return None
    paths, idents = stamp["paths"], stamp["identities"]
    if len(paths) != len(idents):
        return None
    for path, ident in zip(paths, idents, strict=True):
        try:
            st = os.stat(path)
        except OSError:
            if ident is None:
                continue
            return None
        if ident != (st.st_mtime_ns, st.st_size, st.st_ino, st.st_ctime_ns):
            return None
    for index, digest in stamp["digests"]:
        if content_digest(key, paths[index]) != digest:
            return None
    for index, want in stamp["cfg"]:
        if cfg_digest(paths[index]) != want:
            return None
    for path, resolved, digest in stamp["files"]:
        if os.path.realpath(path) != resolved:
            return None
        with open(resolved, "rb") as f:
            if sha256_hex(f.read()) != digest:
                return None
    environ = os.environ
    for name, digest in stamp["env"]:
        if env_digest(key, name, environ.get(name)) != digest:
            return None
    before, after = stamp["output"]
    if type(before) is not str or type(after) is not str:
        return None
    return before, after


def write_stamp(path: str, stamp: "dict[str, Any]") -> bool:
    """Write ``stamp`` at ``path`` whole or not at all; False when it could not be written."""
    import marshal

    tmp = f"{path}.{os.getpid()}.tmp"
    bucket = os.path.dirname(path)
    try:
        os.makedirs(bucket, mode=0o700, exist_ok=True)
        mode = os.stat(bucket).st_mode
        if mode & 0o077:  # made by an older kea, or under another umask
            try:
                os.chmod(bucket, mode & 0o700)
            except OSError:  # not the owner, or modes are fixed there (vfat): still write
                pass
        # owner only: the name is a hash of the arguments and the environment (credentials
        # included), the content names the user's files
        if os.path.lexists(tmp):  # a leftover of a killed writer of the same pid
            os.unlink(tmp)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with open(fd, "wb") as f:
            f.write(marshal.dumps(stamp))
        os.replace(tmp, path)
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        return False
    return True


def settled(stamp: "dict[str, Any]", path: str, now_ns: int) -> None:
    """After a hit that compared contents: once none of those files changed within 2 seconds
    of now, their identities alone will show a change, so the stamp is written again without
    the digests. Any failure leaves the stamp as it was."""
    from kea.filestamp import RACY_NS

    cutoff = now_ns - RACY_NS
    idents = stamp["identities"]
    if any(idents[i][0] >= cutoff for i, _ in (*stamp["digests"], *stamp["cfg"])):
        return
    try:
        write_stamp(path, {**stamp, "digests": [], "cfg": []})
    except Exception:  # a stamp is only ever an optimisation
        pass


def try_noop(args: list[str], started: float) -> bool:
    """Answer ``kea pip install ARGS`` from its stamp: True when the answer was printed."""
    environ = os.environ
    if environ.get("KEA_NO_FASTPATH", "") not in ("", "0"):
        return False
    try:
        import marshal

        path = stamp_path(args, environ)
        if path is None:
            return False
        with open(path, "rb") as f:
            # In a cache shared between users, a stamp another user wrote (or planted) could
            # answer for this one: only one's own stamps are read.
            if hasattr(os, "getuid") and os.fstat(f.fileno()).st_uid != os.getuid():
                return False
            stamp = marshal.loads(f.read())
        text = check(stamp, os.path.basename(path))
    except Exception:  # any doubt: the full path answers
        return False
    if text is None:
        return False
    import time

    before, after = text
    if before or after:
        if sys.stderr is None:  # started closed (``2>&-``): the full path tells what happens
            return False
        try:
            sys.stderr.write(before + elapsed(time.perf_counter() - started) + after)
            sys.stderr.flush()
        except BrokenPipeError:  # as the full path (kea.cli.output.run_cli) ends
            sys.exit(1)
    if stamp["digests"] or stamp["cfg"]:
        settled(stamp, path, time.time_ns())
    return True
