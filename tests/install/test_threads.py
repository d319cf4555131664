"""kea.install.threads: the installer's threads (submit, map, and how they end)."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest

from kea.install.threads import Threads


def test_map_answers_in_order_on_at_most_size_threads() -> None:
    seen: set[tuple[int, str]] = set()

    def square(x: int) -> int:
        seen.add((threading.get_ident(), threading.current_thread().name))
        time.sleep(0.001)
        return x * x

    with Threads(3) as pool:
        assert pool.map(square, range(40)) == [x * x for x in range(40)]
        assert pool.map(square, []) == []
    assert 1 <= len(seen) <= 3
    assert {name for _, name in seen} == {"kea-install"}
    assert threading.get_ident() not in {ident for ident, _ in seen}
    assert all(not t.is_alive() for t in pool._threads)


def test_the_first_failure_in_item_order_is_raised_once_every_call_ended() -> None:
    ended: list[int] = []

    def fail_some(x: int) -> int:
        time.sleep(0.02 if x == 1 else 0)
        ended.append(x)
        if x in (1, 3):
            raise ValueError(f"bad {x}")
        return x

    with Threads(2) as pool, pytest.raises(ValueError, match="bad 1"):
        pool.map(fail_some, range(6))
    assert sorted(ended) == list(range(6))


def test_a_job_gives_its_value_or_its_exception() -> None:
    with Threads(2) as pool:
        ok = pool.submit(lambda a, b: a + b, 2, 3)
        bad = pool.submit(int, "not a number")
        assert ok.result() == 5
        with pytest.raises(ValueError, match="invalid literal"):
            bad.result()


def test_leaving_drops_what_has_not_started_and_waits_for_what_runs() -> None:
    started, release = threading.Event(), threading.Event()
    finished: list[int] = []

    def slow(x: int) -> int:
        started.set()
        release.wait(5)
        finished.append(x)
        return x

    pool = Threads(1)
    running = pool.submit(slow, 1)
    waiting = pool.submit(slow, 2)
    assert started.wait(5)
    closer = threading.Thread(target=pool.close)
    closer.start()
    time.sleep(0.05)
    assert closer.is_alive()  # the running call holds the close up
    release.set()
    closer.join(5)
    assert not closer.is_alive()
    assert running.result() == 1 and finished == [1]
    with pytest.raises(RuntimeError, match="ended before this call started"):
        waiting.result()
    with pytest.raises(RuntimeError, match="have ended"):
        pool.submit(slow, 3)


def test_an_exception_in_the_with_block_still_ends_every_thread() -> None:
    with pytest.raises(KeyError), Threads(2) as pool:
        pool.map(lambda x: x, range(10))
        raise KeyError("stop")
    assert all(not t.is_alive() for t in pool._threads)


def test_a_warm_install_path_imports_neither_concurrent_futures_nor_logging() -> None:
    code = (
        "import sys; import kea.install.installer, kea.install.stage, kea.install.wheel; "
        "print(sorted(m for m in ('concurrent.futures', 'logging', 'queue') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
