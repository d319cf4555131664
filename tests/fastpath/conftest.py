"""The fast path's tests use the ``kea pip install`` fixtures (loopback index, clean env)."""

from tests.pip.conftest import kea, small_index

__all__ = ["kea", "small_index"]
