"""Entry point of the ``kea`` command.

``kea --version`` answers before click (or anything heavy) is imported. Subcommands are loaded
lazily, each from its own module, so a command imports only what it uses.
"""

import os
import sys

TYPE_CHECKING = False  # typing itself is not imported: ``kea --version`` must not pay for it
if TYPE_CHECKING:
    from typing import Any

# name -> (module, attribute) of the click command or group, imported on first use.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "auth": ("kea.cli.auth_cmd", "auth"),
    "pip": ("kea.cli.pip_cmd", "pip"),
    "venv": ("kea.cli.venv_cmd", "venv"),
    "cache": ("kea.cli.cache_cmd", "cache"),
    "serve": ("kea.cli.serve_cmd", "serve"),
}


def _build_group() -> "Any":
    import click

    from kea.cli.lazy import LazyGroup

    @click.group(
        cls=LazyGroup,
        lazy=SUBCOMMANDS,
        context_settings={"help_option_names": ["-h", "--help"]},
        help="kea: a fast Python package installer that gets private indexes right.",
    )
    @click.version_option(
        _version(), "-V", "--version", prog_name="kea", message="%(prog)s %(version)s"
    )
    def kea() -> None:
        pass

    return kea


def _version() -> str:
    from kea import __version__

    return __version__


# The cyclic GC's first-generation threshold for the console script's short-lived commands:
# with the default (700) a warm jupyter install ran 83 young and 8 older collections, 11 ms
# spent walking the same long-lived objects (modules, parsed records) again and again, which
# reference counting alone would never free. A run this size now never collects; a cold one a
# few times. ``kea serve``, a long-lived server, keeps the default.
GC_THRESHOLD = (100_000, 10, 10)


def main(argv: list[str] | None = None) -> None:
    from time import perf_counter

    started = perf_counter()
    args = sys.argv[1:] if argv is None else argv
    if args in (["--version"], ["-V"]):
        sys.stdout.write(f"kea {_version()}\n")
        sys.exit(0)
    if argv is None and args[:1] != ["serve"]:
        import gc

        gc.set_threshold(*GC_THRESHOLD)
    if args[:2] == ["pip", "install"]:
        from kea.cli import fastpath  # stdlib only: a no-op answered from its stamp

        try:
            if fastpath.try_noop(args, started):
                if argv is None:
                    from kea.cli.exit import quick_exit

                    quick_exit(0)
                sys.exit(0)
        except KeyboardInterrupt:  # as kea.cli.output.run_cli answers it
            sys.stderr.write("error: interrupted\n")
            sys.exit(130)
        fastpath.ARGV = list(args)  # the full path may write the stamp for these exact args
        _import_msgspec()
        from kea.cli import early_probe

        early_probe.start(args[2:], os.environ)  # a cold cache's probe runs while kea imports
        try:
            _run_install(args, quick_exit=argv is None)
        finally:
            fastpath.ARGV = None
        return
    _run(args, quick_exit=argv is None)


def _import_msgspec() -> None:
    """Import msgspec without its optional use of ``typing_extensions``.

    msgspec imports ``typing_extensions`` when it can, only to recognise that module's typing
    forms in annotations; kea's structs use ``typing`` alone. Where it is installed (aiohttp's
    dependencies bring it), that import cost a jupyter ``kea pip install --dry-run`` on a warm
    cache about 4 ms (hyperfine, 60 runs: 103.3 against 99.4 ms). Hidden during msgspec's
    import only, it stays importable for whoever needs it afterwards.
    """
    if "msgspec" in sys.modules or "typing_extensions" in sys.modules:
        return
    sys.modules["typing_extensions"] = None  # type: ignore[assignment]  # ImportError on import
    try:
        import msgspec  # noqa: F401
    finally:
        del sys.modules["typing_extensions"]


def _run_install(args: list[str], *, quick_exit: bool) -> None:
    """``kea pip install ...``: its options read by ``kea.cli.flags`` when that reader can, else
    by click, like any other command."""
    from kea.cli import flags

    params = flags.read(args[2:])
    if params is None:
        _run(args, quick_exit=quick_exit)
        return
    from kea.cli.install_run import run_install
    from kea.cli.output import run_guarded

    run_guarded(lambda: run_install(params), args, quick_exit=quick_exit)


def _run(args: list[str], *, quick_exit: bool) -> None:
    from kea.cli.output import run_cli

    _import_msgspec()

    # The console script (argv from sys.argv) ends without the interpreter's teardown; a caller
    # of main(argv) gets the usual SystemExit.
    run_cli(_build_group(), args, quick_exit=quick_exit)


if __name__ == "__main__":
    main()
