"""``kea auth check URL``: the GET chain an install would make, hop by hop.

It is the tool to run first when "not found" really means "not allowed": it shows each hop's
status, redacted URL, origin change, and which credential source was applied or dropped.
"""

from __future__ import annotations

from typing import Any

import click

from kea.cli.options import global_options, index_options
from kea.cli.params import settings_from

# What the index client asks for: PEP 691 JSON first, then PEP 503 HTML.
PAGE_ACCEPT = (
    "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2,"
    " text/html;q=0.01"
)


@click.group(help="Inspect how kea authenticates to indexes.")
def auth() -> None:
    pass


@auth.command(help="Fetch URL as an install would and show every hop and its credentials.")
@click.argument("url")
@global_options
@index_options
def check(url: str, **params: Any) -> None:
    import asyncio

    settings = settings_from(params)
    asyncio.run(_check(url, settings))


def format_hop(number: int, hop: Any) -> str:
    """One line per hop: ``hop N: STATUS URL | notes | credentials: SOURCE``."""
    from kea.auth.redact import redact_url

    notes = []
    if hop.origin_changed:
        notes.append(f"origin changed to {hop.origin}")
    if hop.dropped:
        notes.append(f"dropped credentials of {hop.dropped}")
    if hop.retry:
        notes.append("retry after 401")
    if hop.attempts > 1:
        notes.append(f"{hop.attempts} attempts")
    cred = f"credentials: {hop.source}"
    if not hop.sent_credentials and hop.reason:
        cred += f" ({hop.reason})"
    notes.append(cred)
    return f"hop {number}: {hop.status} {redact_url(hop.url)} | " + " | ".join(notes)


async def _check(url: str, settings: Any) -> None:
    from kea.auth.redact import redact_url
    from kea.http.client import HttpClient
    from kea.http.errors import HttpError, status_text

    click.echo(f"GET {redact_url(url)}")
    async with HttpClient(settings) as client:
        try:
            resp = await client.get(url, headers={"Accept": PAGE_ACCEPT}, purpose="page")
        except HttpError as e:
            for number, hop in enumerate(e.hops, 1):
                click.echo(format_hop(number, hop))
            raise
    for number, hop in enumerate(resp.hops, 1):
        click.echo(format_hop(number, hop))
    ctype = resp.headers.get("Content-Type", "") or "(none)"
    click.echo(f"final: {status_text(resp.status)}, content type {ctype}")
    if not resp.ok:
        resp.raise_for_status()
        raise click.exceptions.Exit(1)
