"""A click command that reads a lone short option (``-r FILE``, ``-q``) as its long spelling.

click's parser tries every ``-x`` as a long option first, and that miss builds a ``NoSuchOption``
whose suggestions import ``difflib`` and compare ``-x`` with every long option (and translate
its message): about 2.5 ms per short option on the command line of a warm install, before the
first useful step. Spelling an exact ``-x`` out as its long form before click parses gives the
same result without the miss. Everything else (grouped flags ``-qv``, attached values ``-rFILE``,
unknown options) is left to click as it is.
"""

from __future__ import annotations

from collections.abc import Iterator

import click


class ShortFirstCommand(click.Command):
    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, list(spell_out(self.get_params(ctx), args)))


def spell_out(params: list[click.Parameter], args: list[str]) -> Iterator[str]:
    """``args`` with each exact short option in an option's place replaced by its long name.

    A token that is the value of the option before it is never touched, nor anything after
    ``--``."""
    long_of: dict[str, str] = {}
    takes_value: dict[str, int] = {}  # option spelling -> how many values follow it
    for p in params:
        if not isinstance(p, click.Option):
            continue
        n = 0 if p.is_flag or p.count else max(p.nargs, 1)
        for names in (p.opts, p.secondary_opts):
            longs = [o for o in names if o.startswith("--")]
            for o in names:
                takes_value[o] = n
                if longs and len(o) == 2 and o[0] == "-" and o[1] != "-":
                    long_of[o] = longs[0]
    values_due = 0
    it = iter(args)
    for arg in it:
        if values_due:
            values_due -= 1
            yield arg
            continue
        if arg == "--":
            yield arg
            yield from it
            return
        values_due = 0 if "=" in arg else takes_value.get(arg, 0)  # "--opt=x": value attached
        yield long_of.get(arg, arg)
