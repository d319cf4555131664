"""Start probing the target interpreter before click and kea's modules are imported.

On a cold cache (the first run against a new environment, or an emptied cache) the probe of
the target interpreter (``kea.install.environment``) is a Python process of about 45 ms that
``kea pip install`` would otherwise start, and wait for, after parsing its options and reading
its requirements. Started here from the raw arguments, it runs on another core meanwhile.

The target is guessed the way ``resolve_target`` finds it in the common cases: a ``--python``
path (or venv directory), else ``VIRTUAL_ENV``, ``CONDA_PREFIX`` or a ``.venv`` nearby, and the
cache directory as the no-op fast path finds it. ``--system``, ``--target``, ``--prefix`` or a
``--python`` version start nothing. A wrong guess costs only the background process: the probe
is collected only by a query of the same interpreter that misses the cache.
"""

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence


def start(args: "Sequence[str]", env: "Mapping[str, str]") -> None:
    """Start the probe when the guess is cheap and its answer is not cached; never raises."""
    try:
        _start(args, env)
    except Exception:  # a guess: whatever went wrong here, the normal path meets and decides
        pass


def _start(args: "Sequence[str]", env: "Mapping[str, str]") -> None:
    from kea.cli.fastpath import cache_dir, option_value

    head = args[: args.index("--")] if "--" in args else args
    if any(a in ("--system", "--target", "--prefix") for a in head) or any(
        a.startswith(("--target=", "--prefix=")) for a in head
    ):
        return
    cache = cache_dir(args, env)
    if cache is None:
        return
    from pathlib import Path

    from kea.install.environment import (
        CACHE_BUCKET,
        find_venv,
        looks_like_path,
        probe_in_background,
        venv_python,
    )

    python = option_value(args, "--python", "-p")
    if python is not None:
        if not looks_like_path(python):
            return
        path = Path(python).expanduser()
        if path.is_dir():
            path = venv_python(path)
    else:
        venv = find_venv(env, Path.cwd())
        if venv is None:
            return
        path = venv_python(venv)
    probe_in_background(path, Path(cache) / CACHE_BUCKET)
