"""First-match routing of normalised project names, with private names and deny routes.

A name matching one of the top-level ``private`` patterns is only ever routed to a route marked
``private = true``: routes without it are skipped for such a name, so a public catch-all (even one
listed first) can never answer for it. When no private route matches, the name is unknown (404),
never looked up on a public route.
"""

from __future__ import annotations

from collections.abc import Iterable

from kea.serve.config import Route, ServeConfig
from kea.serve.names import any_of


def is_private(config: ServeConfig, normalized: str) -> bool:
    return any(p.matches(normalized) for p in config.private)


def route_for(config: ServeConfig, normalized: str) -> Route | None:
    """The route that answers for ``normalized`` (None: no route; a deny route: denied)."""
    private = is_private(config, normalized)
    for route in config.routes:
        if private and not route.private and route.mode != "deny":
            continue
        if route.matches(normalized):
            return route
    return None


def routed_to(config: ServeConfig, route: Route, names: Iterable[str]) -> list[str]:
    """The ``names`` (normalised) that ``route_for`` gives to ``route``, in their order: with one
    compiled expression per rule rather than a call per pattern, for a whole index's list."""
    mine = any_of(route.patterns)
    private = any_of(config.private)
    earlier = config.routes[: config.routes.index(route)]
    # what a name reaches first: any earlier route, or (a private name) only the private and
    # deny ones
    before_public = any_of(p for r in earlier for p in r.patterns)
    before_private = any_of(p for r in earlier if r.private or r.mode == "deny" for p in r.patterns)
    skips_private = not route.private and route.mode != "deny"
    out = []
    for name in names:
        if not mine(name):
            continue
        if private(name):
            if skips_private or before_private(name):
                continue
        elif before_public(name):
            continue
        out.append(name)
    return out


__all__ = ["is_private", "route_for", "routed_to"]
