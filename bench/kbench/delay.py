"""The seed upstream's delay and credentials check: nginx's ``auth_request`` target.

``python -m kbench.delay PORT SECONDS`` (credentials from ``KBENCH_USER``/``KBENCH_PASSWORD``):
every request waits SECONDS, then gets 200 if it carries those Basic credentials, else 401 with
a ``WWW-Authenticate`` challenge (nginx passes both on to the client).
"""

from __future__ import annotations

import asyncio
import base64
import os
import sys


def expected_header(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


def main() -> None:
    from aiohttp import web

    port, delay = int(sys.argv[1]), float(sys.argv[2])
    want = expected_header(os.environ["KBENCH_USER"], os.environ["KBENCH_PASSWORD"])

    async def check(request: web.Request) -> web.Response:
        await asyncio.sleep(delay)
        if request.headers.get("Authorization") == want:
            return web.Response(status=200)
        return web.Response(status=401, headers={"WWW-Authenticate": 'Basic realm="bench"'})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", check)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


if __name__ == "__main__":
    main()
