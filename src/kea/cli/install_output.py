"""What ``kea pip install`` prints: uv's summary lines on stderr, and the progress bar.

``Resolved N packages in 1.21s``, `` + name==version`` / `` - name==version`` lines, ``Would
install ...`` with ``--dry-run``. Every line goes through ``kea.cli.output.info`` (redacted,
silenced by ``-q``, coloured as ``--color`` says); the rich progress bar is only drawn when
stderr is a TTY and neither ``-q`` nor ``--no-progress`` was given (rich is imported only then).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kea.dist.installed import InstalledDist


def elapsed(seconds: float) -> str:
    """uv's durations: ``412ms`` under a second, else ``1.21s``."""
    if seconds < 1:
        return f"{max(0, round(seconds * 1000))}ms"
    return f"{seconds:.2f}s"


def packages(n: int) -> str:
    return f"{n} package" + ("" if n == 1 else "s")


def say(message: str) -> None:
    """A summary line on stderr (through the redacting writer); nothing with ``-q``."""
    from kea.cli.output import info

    info(message)


def change_lines(added: Iterable[tuple[str, str]], removed: Iterable[tuple[str, str]]) -> None:
    """uv's `` - name==old`` / `` + name==new`` lines, sorted by name, removals first."""
    from kea.dist.names import canonicalize_name

    rows = [(canonicalize_name(n), 0, f" - {canonicalize_name(n)}=={v}") for n, v in removed]
    rows += [(canonicalize_name(n), 1, f" + {canonicalize_name(n)}=={v}") for n, v in added]
    for _, _, line in sorted(rows):
        say(line)


def dry_run_report(todo: list[Any], replaced: list[InstalledDist], cache: Any) -> None:
    fetch = [c for c in todo if cache.find_archive(c.file.filename, url=c.file.url,
                                                   hashes=c.file.hashes) is None]  # fmt: skip
    if fetch:
        say(f"Would download {packages(len(fetch))}")
    if replaced:
        say(f"Would uninstall {packages(len(replaced))}")
    say(f"Would install {packages(len(todo))}")
    change_lines(
        [(c.display_name, str(c.version)) for c in todo],
        [(d.name, d.version) for d in replaced],
    )


class Progress:
    """A transient rich progress bar on stderr (only used on a TTY without -q/--no-progress)."""

    def __init__(self, total: int | None) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        from kea.cli.output import use_color

        color = use_color()  # --color decides, not rich's own reading of NO_COLOR/FORCE_COLOR

        self._progress = Progress(
            TextColumn("Preparing"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.description}"),
            console=Console(
                stderr=True, no_color=not color, color_system="auto" if color else None
            ),
            transient=True,
        )
        self._task = self._progress.add_task("", total=total)
        self._progress.start()

    def advance(self, name: str) -> None:
        self._progress.update(self._task, advance=1, description=name)

    def set_total(self, total: int, completed: int) -> None:
        """The bar's size once known (None until then: wheels prepared while resolving)."""
        self._progress.update(self._task, total=total, completed=completed)

    def close(self) -> None:
        self._progress.stop()
