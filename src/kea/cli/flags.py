"""The options of kea's commands, as data, and a click-free reader of ``kea pip install``'s.

Every option is declared once here (``Opt``); ``kea.cli.options`` turns these declarations into
click options, so ``--help``, errors and every command other than ``pip install`` are click's.

``read`` parses ``kea pip install``'s arguments without importing click, which cost a warm
install ~12 ms (click's import, building ~45 options, its parse; alternated runs of a jupyter
``--dry-run``: 98.1 against 85.8 ms). It gives exactly the dict click would (same values, same
key order) for the plain spellings: ``--name value``, ``--name=value``, an exact ``-x`` or
``-x value``, positional arguments anywhere, ``--``. Anything else (``--help``, an unknown or
repeated option, grouped or attached short options, a value that starts with ``-``, a value
click would refuse) answers None, and click parses the command as usual, errors included.
``tests/test_cli_flags.py`` holds the two readers together.

Nothing here imports click. The lists of choices come from the modules that act on them
(``kea.settings``, needed by every command anyway; ``kea.cli.output``;
``kea.resolver.protocol``; ``kea.install.link``), so a value is spelled in one place.
"""

import os
import stat

from kea.cli.output import COLOR_MODES
from kea.install.link import LINK_MODES
from kea.resolver.protocol import PRERELEASE_MODES, RESOLUTION_MODES
from kea.settings import KEYRING_VALUES, STRATEGY_VALUES

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

# kinds of option
FLAG = "flag"  # True when given; ``default`` (False or None) when not; ``off`` names give False
COUNT = "count"  # how many times given (-v -v)
VALUE = "value"  # one value; None when not given
MULTIPLE = "multiple"  # a value per use, as a tuple; () when not given


class Opt:
    """One option: the parameter's name, its spellings and what it takes."""

    __slots__ = ("choices", "default", "dest", "help", "kind", "metavar", "names", "off", "path")

    def __init__(
        self,
        dest: str,
        names: "tuple[str, ...]",
        kind: str = VALUE,
        *,
        default: "Any" = False,  # a flag's, when not given (False or None); others: see kind
        choices: "tuple[str, ...] | None" = None,
        path: "str | None" = None,  # "file": no directory; "dir": no regular file
        help: "str | None" = None,
        metavar: "str | None" = None,
        off: "tuple[str, ...]" = (),  # a boolean flag's "off" spellings (--no-refresh)
    ) -> None:
        self.dest = dest
        self.names = names
        self.kind = kind
        self.default = {MULTIPLE: (), COUNT: 0, VALUE: None}.get(kind, default)
        self.choices = choices
        self.path = path
        self.help = help
        self.metavar = metavar
        self.off = off


GLOBAL = (
    Opt("verbosity", ("-v", "--verbose"), COUNT, help="More output (-vvv: trace)."),
    Opt("quiet", ("-q", "--quiet"), COUNT, help="Less output."),
    Opt("no_config", ("--no-config",), FLAG, help="Ignore kea.toml / pyproject files."),
    Opt("config_file", ("--config-file",), path="file", help="Use this config file only."),
    Opt("cache_dir", ("--cache-dir",), path="dir", help="Cache directory."),
    Opt("no_cache", ("--no-cache", "-n"), FLAG, help="Use a temporary cache."),
    Opt("offline", ("--offline",), FLAG, help="Never touch the network."),
    Opt("color", ("--color",), choices=COLOR_MODES, help="Color."),
    Opt("no_progress", ("--no-progress",), FLAG, help="No progress bars."),
)

INDEX = (
    Opt("index", ("--index",), MULTIPLE, help="An index, as URL or NAME=URL (repeatable)."),
    Opt("default_index", ("--default-index",), help="The default index (replaces PyPI)."),
    Opt("index_url", ("--index-url", "-i"), help="Alias of --default-index (pip's name)."),
    Opt("extra_index_url", ("--extra-index-url",), MULTIPLE, help="An extra index (repeatable)."),
    Opt("find_links", ("--find-links", "-f"), MULTIPLE, help="A directory or page of links."),
    Opt("no_index", ("--no-index",), FLAG, help="Use no index (only --find-links)."),
    Opt("index_strategy", ("--index-strategy",), choices=STRATEGY_VALUES),
    Opt("keyring_provider", ("--keyring-provider",), choices=KEYRING_VALUES),
    Opt(
        "allow_insecure_host",
        ("--allow-insecure-host",),
        MULTIPLE,
        help="Skip TLS checks for a host.",
    ),
)

REFRESH = (
    Opt(
        "refresh",
        ("--refresh",),
        FLAG,
        default=None,
        off=("--no-refresh",),
        help="Revalidate every cached index page with the index (ETag / Last-Modified) "
        "instead of trusting its max-age. An error with --offline (they contradict); "
        "KEA_REFRESH or a config file's refresh = true is ignored when offline.",
    ),
    Opt(
        "refresh_package",
        ("--refresh-package",),
        MULTIPLE,
        metavar="NAME",
        help="Like --refresh, for this project's pages only (repeatable; ignored offline).",
    ),
)

TARGET = (
    Opt("python", ("--python", "-p"), help="The interpreter (path or version) to act on."),
    Opt("system", ("--system",), FLAG, help="Allow a non-virtual (system) interpreter."),
    Opt(
        "break_system_packages",
        ("--break-system-packages",),
        FLAG,
        help="Change an interpreter its distributor marks as externally managed (PEP 668).",
    ),
    Opt("target", ("--target",), path="dir", help="Install into this directory."),
    Opt("prefix", ("--prefix",), path="dir", help="Install under DIR."),
)

INSTALL = (
    Opt(
        "requirements",
        ("-r", "--requirements", "--requirement"),
        MULTIPLE,
        path="file",
        help="Install from this requirements file.",
    ),
    Opt(
        "constraints",
        ("-c", "--constraints", "--constraint"),
        MULTIPLE,
        path="file",
        help="Constrain versions with this file.",
    ),
    Opt(
        "overrides",
        ("--overrides", "--override"),
        MULTIPLE,
        path="file",
        help="Override versions with this file (replaces every requirement on those packages).",
    ),
    Opt("editables", ("-e", "--editable"), MULTIPLE, help="Install a project editable."),
    Opt("require_hashes", ("--require-hashes",), FLAG, help="Every requirement must carry --hash."),
    Opt("dry_run", ("--dry-run",), FLAG, help="Resolve and report, change nothing."),
    Opt("no_deps", ("--no-deps",), FLAG, help="Install only what is named, not dependencies."),
    Opt("reinstall", ("--reinstall", "--force-reinstall"), FLAG, help="Reinstall all."),
    Opt("reinstall_package", ("--reinstall-package",), MULTIPLE, help="Reinstall this package."),
    Opt("upgrade", ("-U", "--upgrade"), FLAG, help="Allow upgrades of installed packages."),
    Opt(
        "upgrade_package",
        ("-P", "--upgrade-package"),
        MULTIPLE,
        help="Allow upgrades of this package.",
    ),
    Opt(
        "only_binary", ("--only-binary",), MULTIPLE, help="Only wheels for these packages (:all:)."
    ),
    Opt("no_binary", ("--no-binary",), MULTIPLE, help="No wheels for these packages (:all:)."),
    Opt("prerelease", ("--prerelease",), choices=PRERELEASE_MODES),
    Opt("pre", ("--pre",), FLAG, help="Alias of --prerelease allow."),
    Opt("resolution", ("--resolution",), choices=RESOLUTION_MODES),
    Opt("exclude_newer", ("--exclude-newer",), help="Ignore files uploaded after this date/time."),
    Opt("link_mode", ("--link-mode",), choices=LINK_MODES),
    Opt(
        "compile_bytecode",
        ("--compile-bytecode", "--compile"),
        FLAG,
        default=None,
        help="Compile .py files to .pyc after installing.",
    ),
)

# ``kea pip install``'s parameters in click's declaration order: the argument, then the options.
INSTALL_ARGUMENT = "packages"
INSTALL_ALL = INSTALL + TARGET + INDEX + REFRESH + GLOBAL


def read(args: "Sequence[str]", opts: "Sequence[Opt]" = INSTALL_ALL) -> "dict[str, Any] | None":
    """The params click would give ``kea pip install`` for ``args`` (after ``pip install``), or
    None when this reader is not certain to agree with click (see the module's docstring)."""
    by_name: dict[str, tuple[Opt, bool]] = {}
    for o in opts:
        for n in o.names:
            by_name[n] = (o, True)
        for n in o.off:
            by_name[n] = (o, False)
    given: dict[str, Any] = {}  # in the order click processes them: first use on the line
    positional: list[str] = []
    i, end = 0, len(args)
    while i < end:
        arg = args[i]
        i += 1
        if arg == "--":
            positional.extend(args[i:])
            break
        if arg[:1] != "-" or len(arg) == 1:
            positional.append(arg)
            continue
        name, eq, attached = arg.partition("=")
        if eq and not name.startswith("--"):
            return None  # "-x=...": click reads "=..." as the value; not worth copying
        found = by_name.get(name)
        if found is None:
            return None  # unknown, --help, grouped or attached short options: click's job
        opt, on = found
        if opt.kind in (FLAG, COUNT):
            if eq:
                return None  # click refuses a value for a flag
            if opt.kind == COUNT:
                given[opt.dest] = given.get(opt.dest, 0) + 1
                continue
            if opt.dest in given:
                return None
            given[opt.dest] = on
            continue
        if eq:
            value = attached
        else:
            if i == end or args[i][:1] == "-":
                return None  # missing, or a value that looks like an option
            value = args[i]
            i += 1
        if not _acceptable(opt, value):
            return None
        if opt.kind == MULTIPLE:
            given[opt.dest] = (*given.get(opt.dest, ()), value)
        elif opt.dest in given:
            return None
        else:
            given[opt.dest] = value
    params = dict(given)
    params[INSTALL_ARGUMENT] = tuple(positional)
    for o in opts:
        if o.dest not in params:
            params[o.dest] = o.default
    return params


def _acceptable(opt: Opt, value: str) -> bool:
    """Whether click would take ``value`` for ``opt`` unchanged (its Choice and Path checks)."""
    if opt.choices is not None:
        return value in opt.choices
    if opt.path is None:
        return True
    try:
        st = os.stat(value)
    except ValueError:  # an embedded NUL: click's own error
        return False
    except OSError:
        return True  # click's Path(exists=False) takes a path that is not there as it is
    if opt.path == "file" and stat.S_ISDIR(st.st_mode):
        return False
    if opt.path == "dir" and stat.S_ISREG(st.st_mode):
        return False
    return os.access(value, os.R_OK)
