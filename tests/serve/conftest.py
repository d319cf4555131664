"""Fixtures of the kea serve suite: one server loop, TLS, wheels and a pypiserver per session."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.harness import User, token
from tests.e2e.servers.pypi import PypiServer
from tests.e2e.servers.tls import Tls, make_tls
from tests.e2e.servers.web import ServerLoop
from tests.e2e.wheels import build_wheel


@dataclass
class Wheels:
    root: Path
    private_dir: Path  # what the protected pypiserver serves
    local_dir: Path  # a directory route
    priv: Path  # priv-pkg 1.0 (private)
    priv_public: Path  # priv-pkg 9.0: the same name on the public upstream (never served)
    pub: Path  # pub-pkg 1.0 (public upstream)
    local: Path  # local-pkg 2.0
    app: Path  # local-app 1.0, requires local-pkg


@pytest.fixture(scope="session")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> Wheels:
    root = tmp_path_factory.mktemp("serve-wheels")
    private_dir = root / "private"
    local_dir = root / "local"
    public_dir = root / "public"
    return Wheels(
        root=root,
        private_dir=private_dir,
        local_dir=local_dir,
        priv=build_wheel(private_dir, "priv-pkg", "1.0"),
        priv_public=build_wheel(public_dir, "priv-pkg", "9.0"),
        pub=build_wheel(public_dir, "pub-pkg", "1.0"),
        local=build_wheel(local_dir, "local-pkg", "2.0"),
        app=build_wheel(local_dir, "local-app", "1.0", requires=("local-pkg>=2",)),
    )


@pytest.fixture(scope="session")
def loop() -> Iterator[ServerLoop]:
    server_loop = ServerLoop()
    yield server_loop
    server_loop.stop()


@pytest.fixture(scope="session")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    return make_tls(tmp_path_factory.mktemp("serve-tls"))


@dataclass
class Private:
    server: PypiServer
    serve_user: User  # the credentials only kea serve holds
    client_user: User  # a user of the upstream itself (redirect mode: the client's own)


@pytest.fixture(scope="session")
def private(
    tmp_path_factory: pytest.TempPathFactory, tls: Tls, wheels: Wheels
) -> Iterator[Private]:
    serve_user = User("kea-serve", token("pw-serve-"))
    client_user = User("bob", token("pw-bob-"))
    server = PypiServer(
        tmp_path_factory.mktemp("serve-pypiserver"),
        "127.0.0.2",
        tls=tls,
        users={serve_user.name: serve_user.password, client_user.name: client_user.password},
        packages=wheels.private_dir,
    )
    yield Private(server, serve_user, client_user)
    server.stop()
