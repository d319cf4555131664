"""Writing the stamp of the no-op fast path (``kea.cli.fastpath``) after a full no-op audit.

``Recorder.start(params)`` is called when ``kea pip install`` starts; it answers None unless this
run may write a stamp at all (no ``-v``, ``--dry-run``, ``-U``/``-P``, ``--reinstall*``,
``--no-cache``, editables, ``--system``/``--target``/``--prefix``, or a ``--python`` that is not a
path; only when ``kea.cli.main`` saw the exact arguments). The recorder then

- stats the files kea may read before it reads them: the config files and ``.venv`` markers of
  the working directory and its parents, the user config file, ``--config-file``; after the
  target is known (``watch_target``) and before the installed distributions are read: the target
  interpreter, its ``pyvenv.cfg``, the site-packages directories and the ``METADATA`` of every
  ``*.dist-info`` in them (no stamp when the interpreter is a launcher: a path that is not the
  ``sys.executable`` it reports, such as a pyenv shim, picks the real one when it runs);
- at the end, stats the source files of kea, packaging and msgspec modules the run loaded (so
  an upgrade or an edit of the code that answered makes the stamp miss);
- captures what the run writes on stdout and stderr (still passing it through), so that a run
  that printed anything besides its summary line (a warning, say) writes no stamp.

``finish`` writes the stamp only when the run printed exactly the summary line, every
requirement was a plain registry one and the cache directory is the one the fast path computes.

A file whose mtime is "racy" (within 2 seconds of the run's start or later, as
git says of its index) may change again, after the run read it, in the same tick of the file
system's clock, which its identity would not show. A file watched before it is read gets the
digest of its content (``fastpath.content_digest``) when it is racy, taken right after its
identity and before the run reads it; the fast path then compares contents too. A file watched
after it was read (kea's own code, the config files settings named, the target interpreter, the
``.venv`` markers that ``kea.cli.early_probe`` reads before the run starts recording), or racy
and unreadable, or not a regular file or directory, cannot be vouched for that way: then no
stamp is written. The target's ``pyvenv.cfg`` is vouched for by the digest of the content the
interpreter's facts were for (``kea.install.environment.cfg_read``), compared the same way.
"""

from __future__ import annotations

import os
import sys
import time
from typing import IO, TYPE_CHECKING, Any

from kea.cli import fastpath
from kea.filestamp import RACY_NS, code_files, identity, trim

if TYPE_CHECKING:
    from kea.cli.install_request import Request
    from kea.install.environment import Target
    from kea.settings import Settings

MAX_STAMPS = 256

# A non-empty value of any of these params means the run may not write a stamp.
_REFUSING_PARAMS = (
    "verbosity", "dry_run", "upgrade", "upgrade_package", "reinstall", "reinstall_package",
    "no_cache", "editables", "system", "target", "prefix", "break_system_packages",
)  # fmt: skip


class _Capture:
    """A text stream that passes everything to ``stream`` and, while recording, keeps a copy."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self.parts: list[str] = []
        self.recording = True
        self.bypassed = False  # someone took the binary buffer: what they wrote is unknown

    def write(self, text: str) -> int:
        if self.recording:
            self.parts.append(text)
        return self._stream.write(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:
        if name == "buffer" and self.recording:
            self.bypassed = True
        return getattr(self._stream, name)


class Recorder:
    """What one full ``kea pip install`` run needs to write its no-op stamp."""

    def __init__(self, argv: list[str], path: str) -> None:
        self.argv = argv
        self.path = path
        self.started_ns = time.time_ns()
        self._cutoff = self.started_ns - RACY_NS
        self._key = os.path.basename(path)
        self.paths: list[str] = []
        self.identities: list[tuple[int, int, int, int] | None] = []
        self.digests: list[tuple[int, str]] = []  # (index in paths, content digest) of racy ones
        self.cfg: list[tuple[int, int]] = []  # (index in paths, digest) of the pyvenv.cfg read
        self.failed = False
        self._out = _Capture(sys.stdout)
        self._err = _Capture(sys.stderr)

    @classmethod
    def start(cls, params: dict[str, Any]) -> Recorder | None:
        argv, fastpath.ARGV = fastpath.ARGV, None
        if argv is None or argv[:2] != ["pip", "install"]:
            return None
        environ = os.environ
        if environ.get("KEA_NO_FASTPATH", "") not in ("", "0"):
            return None
        if any(params.get(name) for name in _REFUSING_PARAMS):
            return None
        python = params.get("python")
        if python is not None and "/" not in python and os.sep not in python:
            return None  # a version or a name: found on PATH, which may change
        try:
            path = fastpath.stamp_path(argv, environ)
            if path is None:
                return None
            recorder = cls(argv, path)
            recorder._watch_config(params.get("config_file"))
        except OSError:  # e.g. the working directory is gone: the full path says so
            return None
        sys.stdout = recorder._out
        sys.stderr = recorder._err
        return recorder

    def _watch(self, path: str, *, unread: bool = True) -> None:
        """Record ``path``'s identity. ``unread``: kea has not read the file yet, so when it is
        racy, the digest of its content taken now (after the identity, before the read) may
        vouch for it: a change before the read, or after, makes the content differ."""
        if path in self.paths:
            return
        ident = identity(path)
        self.paths.append(path)
        self.identities.append(ident)
        if unread and ident is not None and ident[0] >= self._cutoff:
            try:
                self.digests.append((len(self.paths) - 1, fastpath.content_digest(self._key, path)))
            except OSError:  # unreadable: the racy check at the end refuses the stamp
                pass

    def _watch_config(self, config_file: str | None) -> None:
        """Every file settings and target discovery look for, present or not."""
        from kea.settings import user_config_path

        directory = os.getcwd()
        while True:
            for name in ("kea.toml", "pyproject.toml"):
                self._watch(os.path.join(directory, name))
            # read before this by kea.cli.early_probe, which looks for the target's interpreter
            self._watch(os.path.join(directory, ".venv", "pyvenv.cfg"), unread=False)
            parent = os.path.dirname(directory)
            if parent == directory:
                break
            directory = parent
        self._watch(str(user_config_path(os.environ)))
        if config_file:
            self._watch(os.path.abspath(config_file))

    def watch_target(self, target: Target) -> None:
        """The interpreter and the installed distributions, before they are read."""
        try:
            self._watch_target(target)
        except Exception:  # a stamp is only ever an optimisation: never fail the install
            self.failed = True

    def _watch_target(self, target: Target) -> None:
        exe = target.interpreter.executable
        real = target.interpreter.sys_executable
        if os.path.realpath(real) != os.path.realpath(exe):
            # a launcher (a pyenv shim, a wrapper script) picks the interpreter each time it
            # runs, from what no stamp watches (PYENV_VERSION, .python-version...)
            self.failed = True
            return
        # finding the target ran the interpreter (or read its cached facts) and read its
        # pyvenv.cfg before this: what they hold now may not be what was read
        self._watch(exe, unread=False)
        bindir = os.path.dirname(exe)
        self._watch(os.path.join(bindir, "pyvenv.cfg"), unread=False)
        self._watch(os.path.join(os.path.dirname(bindir), "pyvenv.cfg"), unread=False)
        from kea.install.environment import cfg_read

        read = cfg_read(exe)  # the content the facts were for vouches for a racy pyvenv.cfg
        if read is not None and read[0] in self.paths:
            index = self.paths.index(read[0])
            ident = self.identities[index]
            if ident is not None and ident[0] >= self._cutoff:
                self.cfg.append((index, read[1]))
        for root in target.roots():
            self._watch(str(root))
            try:
                names = sorted(os.listdir(root))
            except OSError:
                continue
            # the root's mtime covers a dist-info added, removed or renamed; METADATA's own
            # identity covers it edited or replaced (the audit reads nothing else there)
            for name in names:
                if name.endswith(".dist-info") and not name.startswith("."):
                    self._watch(os.path.join(root, name, "METADATA"))

    def stop(self) -> None:
        """Stop capturing; the streams kea holds keep passing text through."""
        for capture, name in ((self._out, "stdout"), (self._err, "stderr")):
            capture.recording = False
            if getattr(sys, name) is capture:
                setattr(sys, name, capture._stream)

    def finish(self, request: Request, settings: Settings, head: str, took: str) -> None:
        """The run printed ``head + took`` as its answer: write the stamp if it may be trusted."""
        self.stop()
        if self.failed:
            return
        try:
            stamp = self._stamp(request, settings, head, took)
        except Exception:  # as in watch_target
            return
        if stamp is None:
            return
        if fastpath.write_stamp(self.path, stamp):
            trim(os.path.dirname(self.path), most=MAX_STAMPS, keep=MAX_STAMPS // 2)

    def _stamp(
        self, request: Request, settings: Settings, head: str, took: str
    ) -> dict[str, Any] | None:
        if settings.verbosity or settings.no_cache or not self._plain(request):
            return None
        if not self._same_cache_dir(settings):
            return None
        output = self._output(settings, head, took)
        if output is None:
            return None
        for config in settings.config_files:
            self._watch(os.path.abspath(config), unread=False)
        for code in code_files():
            self._watch(code, unread=False)
        vouched = {index for index, _ in (*self.digests, *self.cfg)}
        for index, i in enumerate(self.identities):
            if i is not None and i[0] >= self._cutoff and index not in vouched:
                return None
        files = request.files
        digests = list(files.digests) if files is not None else []
        env_names = list(files.env_names) if files is not None else []
        key = os.path.basename(self.path)
        env = [(name, fastpath.env_digest(key, name, os.environ.get(name))) for name in env_names]
        return {
            "format": fastpath.FORMAT,
            "key": key,
            "paths": list(self.paths),
            "identities": list(self.identities),
            "digests": list(self.digests),
            "cfg": list(self.cfg),
            "files": digests,
            "env": env,
            "output": output,
        }

    @staticmethod
    def _plain(request: Request) -> bool:
        """Only registry requirements (no URL, path or editable) and nothing asked beyond them."""
        if request.dry_run or request.upgrade or request.upgrade_packages or request.hash_mode:
            return False
        if request.reinstall or request.reinstall_packages:
            return False
        if request.files is not None and request.files.editables:
            return False
        entries = (*request.requirements, *request.constraints, *request.overrides)
        return not any(e.editable or e.requirement.url for e in entries)

    def _same_cache_dir(self, settings: Settings) -> bool:
        if settings.cache_dir is not None:
            real = settings.cache_dir
        else:
            from kea.cache.store import default_cache_dir

            real = default_cache_dir()
        return os.path.abspath(real) == os.path.dirname(os.path.dirname(self.path))

    def _output(self, settings: Settings, head: str, took: str) -> tuple[str, str] | None:
        """(before, after) the elapsed time, if the run printed exactly its summary line."""
        from kea.auth.redact import redact_text
        from kea.cli.output import _colorize, use_color

        if self._out.parts or self._out.bypassed or self._err.bypassed:
            return None
        printed = "".join(self._err.parts)
        if settings.quiet:
            return ("", "") if printed == "" else None

        def render(message: str) -> str:
            text = redact_text(message)
            return (_colorize(text, "info") if use_color() else text) + "\n"

        marker = "\x00"
        before, sep, after = render(head + marker).partition(marker)
        if not sep or printed != before + took + after or render(head + took) != printed:
            return None
        return before, after
