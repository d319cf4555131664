"""First-match routing of normalised project names, with private names and deny routes.

A name matching one of the top-level ``private`` patterns is only ever routed to a route marked
``private = true``: routes without it are skipped for such a name, so a public catch-all (even one
listed first) can never answer for it. When no private route matches, the name is unknown (404),
never looked up on a public route.
"""

from __future__ import annotations

from kea.serve.config import Route, ServeConfig


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


__all__ = ["is_private", "route_for"]
