"""End-to-end fixtures: servers once per session (per xdist worker), a World per test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import Servers, World


@pytest.fixture(scope="session")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    s = Servers(tmp_path_factory.mktemp("e2e-servers"))
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture
def make_world(servers: Servers, tmp_path: Path) -> Iterator[Callable[[int], World]]:
    made: list[World] = []

    def make(verbosity: int = 1) -> World:
        world = World(servers, tmp_path / f"world{len(made)}", verbosity=verbosity)
        made.append(world)
        return world

    yield make
    for world in made:
        world.cleanup()


@pytest.fixture
def world(make_world: Callable[[int], World]) -> World:
    return make_world(1)
