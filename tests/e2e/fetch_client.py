"""Drive kea's HTTP client API the way an install does, for the end-to-end tests.

Usage: ``python fetch_client.py '<json spec>'`` with ``{"cli": {...load_settings cli...},
"steps": [{"url", "purpose", "follow", "headers"}]}``. Every step (and, with ``follow``, every link
of the page, resolved against the page's final URL) goes through ONE ``HttpClient``, as in one
install. Prints errors like kea does and a last line ``RESULT <json>`` with redacted URLs only.
Exit 0 when every request ended 2xx, else 1.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urldefrag, urljoin


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            for name, value in attrs:
                if name == "href" and value:
                    self.hrefs.append(value)


async def _one(client: Any, url: str, purpose: str, headers: dict[str, str]) -> dict[str, Any]:
    from kea.auth.redact import redact_url
    from kea.cli.output import error
    from kea.errors import KeaError

    entry: dict[str, Any] = {"url": redact_url(url), "purpose": purpose}
    try:
        resp = await client.get(url, headers=headers or None, purpose=purpose)
    except KeaError as e:
        error(e.message, e.hint)
        entry.update(status=None, error=e.message)
        return entry
    entry.update(
        status=resp.status,
        final=redact_url(resp.url),
        hops=len(resp.hops),
        sha256=hashlib.sha256(resp.body).hexdigest(),
        size=len(resp.body),
    )
    if not 200 <= resp.status < 300:
        try:
            resp.raise_for_status()
        except KeaError as e:
            error(e.message, e.hint)
            entry["error"] = e.message
    entry["_final_raw"] = resp.url
    entry["_body"] = resp.body
    return entry


async def main(spec: dict[str, Any]) -> int:
    from kea.cli.output import setup_logging
    from kea.http.client import HttpClient
    from kea.settings import load_settings

    cli = spec.get("cli", {})
    settings = load_settings(cli=cli, env=dict(os.environ), cwd=Path.cwd())
    setup_logging(settings.verbosity, settings.quiet)
    results: list[dict[str, Any]] = []
    async with HttpClient(settings) as client:
        for step in spec["steps"]:
            purpose = step.get("purpose", "page")
            entry = await _one(client, step["url"], purpose, step.get("headers") or {})
            results.append(entry)
            body = entry.pop("_body", b"")
            final = entry.pop("_final_raw", None)
            if step.get("follow") and final and entry.get("status") == 200:
                parser = _Links()
                parser.feed(body.decode("utf-8", "replace"))
                for href in parser.hrefs:
                    link = urldefrag(urljoin(final, href))[0]
                    sub = await _one(client, link, "file", {})
                    sub.pop("_body", None)
                    sub.pop("_final_raw", None)
                    sub["from"] = entry["url"]
                    results.append(sub)
    ok = all(r.get("status") is not None and 200 <= r["status"] < 300 for r in results)
    sys.stdout.write("RESULT " + json.dumps(results) + "\n")
    return 0 if ok else 1


def run(argv: list[str]) -> int:
    from kea.cli.output import error
    from kea.errors import KeaError

    try:
        return asyncio.run(main(json.loads(argv[0])))
    except KeaError as e:
        error(e.message, e.hint)
        sys.stdout.write("RESULT " + json.dumps([{"status": None, "error": e.message}]) + "\n")
        return 1


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
