"""Fixtures of the cache tests."""

from __future__ import annotations

import pytest

from kea.cache import archive


@pytest.fixture(params=["memory", "zipfile"])
def reader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each way a wheel is read: whole, from memory (``kea.cache.zipread``, every wheel up to
    ``WHOLE_MAX`` bytes of a common shape), or through ``zipfile`` (larger or unusual wheels;
    here every wheel, by a ``WHOLE_MAX`` no file fits under)."""
    if request.param == "zipfile":
        monkeypatch.setattr(archive, "WHOLE_MAX", -1)
    return str(request.param)
