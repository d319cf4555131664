"""kea.cache.unpacker: wheels unpacked by worker processes; failures as the caller saw them."""

from __future__ import annotations

import asyncio
import errno
import hashlib
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest

from kea.cache import ARCHIVE, Cache, unpacker
from kea.cache.archive import WheelError
from kea.cache.unpacker import Unpacker
from kea.cache.worker import READY
from kea.cache.worker_pipe import WorkerProcess
from kea.errors import KeaError
from tests.cache.test_cache import chunks_of
from tests.cache.wheelmaker import build_wheel


def _target(tmp_path: Path, name: str = "out") -> Path:
    target = tmp_path / name
    target.mkdir()
    return target


def test_a_worker_process_unpacks_and_ends_at_close(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path, "demo", "1.0", files={"demo/data.txt": b"x" * 5000})
    u = Unpacker(1)
    assert asyncio.run(u.unpack(wheel, _target(tmp_path), wheel.name)) == "demo-1.0.dist-info"
    assert (tmp_path / "out" / "demo" / "data.txt").read_bytes() == b"x" * 5000
    (worker,) = u._idle
    assert worker.proc.pid != os.getpid() and worker.proc.poll() is None
    # The same worker takes the next wheel.
    other = build_wheel(tmp_path, "other", "2.0")
    assert (
        asyncio.run(u.unpack(other, _target(tmp_path, "out2"), other.name)) == "other-2.0.dist-info"
    )
    assert u._idle == [worker]
    u.close()
    assert worker.proc.returncode == 0


def test_released_workers_end_while_the_run_goes_on(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path, "demo", "1.0")
    u = Unpacker(1)
    asyncio.run(u.unpack(wheel, _target(tmp_path), wheel.name))
    (first,) = u._idle
    u.close(wait=False)  # what unpacker.release() does once a run has unpacked everything
    assert u._idle == [] and u._started == 0
    assert first.proc.wait(timeout=10) == 0  # it ends by itself at end of input
    # A later wheel gets a new worker; the final close() waits for every worker it ended.
    asyncio.run(u.unpack(wheel, _target(tmp_path, "again"), wheel.name))
    (second,) = u._idle
    assert second is not first
    u.close(wait=False)
    u.close()
    assert second.proc.returncode == 0 and u._ending == []


def test_release_without_a_pool_does_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(unpacker, "_SHARED", None)
    unpacker.release()
    assert unpacker._SHARED is None


def test_a_refused_wheel_keeps_its_message_hint_and_type(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path, "evil", "1.0", files={"../evil.py": b"x"})
    u = Unpacker(1)
    with pytest.raises(WheelError) as e:
        asyncio.run(u.unpack(wheel, _target(tmp_path), wheel.name))
    assert "refusing path '../evil.py'" in e.value.message
    assert e.value.hint == "the wheel is corrupt or malicious; it was not installed or cached"
    assert not (tmp_path / "evil.py").exists()
    assert len(u._idle) == 1  # the wheel's fault: the worker stays
    u.close()


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_worker_checks_the_whole_wheel_before_writing_anything(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path, "demo", "1.0", files={"demo/data.txt": b"x" * 5000})
    u = Unpacker(1)
    target = _target(tmp_path)
    with pytest.raises(WheelError) as e:
        asyncio.run(u.unpack(wheel, target, wheel.name, {"sha256": "0" * 64}))
    assert e.value.message == (
        f"hash mismatch for {wheel.name}: expected sha256:{'0' * 64}, got sha256:{_digest(wheel)}"
    )
    assert e.value.hint == "the file changed on the index or was corrupted in transit; not cached"
    assert list(target.iterdir()) == []
    assert len(u._idle) == 1  # the wheel's fault: the worker stays
    good = {"sha256": _digest(wheel).upper()}
    assert asyncio.run(u.unpack(wheel, target, wheel.name, good)) == "demo-1.0.dist-info"
    assert (target / "demo" / "data.txt").read_bytes() == b"x" * 5000
    u.close()


def test_the_first_part_of_a_split_wheel_checks_the_whole_file_for_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each part hashed the whole file; one check is enough, since a mismatch fails the first
    part and so the wheel, whose new directory the cache then removes (below)."""
    wheel = _large_wheel(tmp_path, monkeypatch)
    monkeypatch.setattr(unpacker, "_SHARED", Unpacker(2))
    sent: list[tuple[tuple[int, int], Any]] = []
    real_send = WorkerProcess.send

    def send(self: WorkerProcess, wheel: Path, target: Path, name: str, *rest: Any) -> bool:
        part, hashes = rest
        sent.append((tuple(part), hashes))
        return bool(real_send(self, wheel, target, name, *rest))

    monkeypatch.setattr(WorkerProcess, "send", send)
    cache = Cache(tmp_path / "cache")
    wrong = {"sha256": "0" * 64}
    with pytest.raises(KeaError, match=r"hash mismatch for big-1\.0-py3-none-any\.whl"):
        asyncio.run(cache.store_wheel(chunks_of(wheel), wheel.name, wrong))
    assert sorted(sent) == [((0, 2), wrong), ((1, 2), None)]
    assert list((cache.root / ARCHIVE).iterdir()) == []  # the second part's files went too
    sent.clear()
    right = {"sha256": _digest(wheel)}
    archive = asyncio.run(cache.store_wheel(chunks_of(wheel), wheel.name, right))
    assert sorted(sent) == [((0, 2), right), ((1, 2), None)]
    assert len(list(archive.rglob("*.py"))) == 121
    unpacker._SHARED.close()


def test_a_disk_error_comes_back_as_the_same_oserror(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path, "demo", "1.0")
    u = Unpacker(1)
    taken = tmp_path / "taken"
    taken.write_text("a file where the directory should be\n")
    with pytest.raises(OSError) as e:
        asyncio.run(u.unpack(wheel, taken, wheel.name))
    assert not isinstance(e.value, KeaError)
    assert e.value.errno in (errno.EEXIST, errno.ENOTDIR)
    assert str(taken) in str(e.value)
    u.close()


def _lent_worker() -> tuple[Unpacker, WorkerProcess]:
    """A one-worker unpacker and its worker, lent to the test as to an unpacking task."""
    u = Unpacker(1)
    worker = asyncio.run(u._acquire(wait=True))
    assert worker is not None
    return u, worker


def test_a_worker_that_died_while_idle_is_replaced_without_failing_a_wheel(
    tmp_path: Path,
) -> None:
    wheel = build_wheel(tmp_path, "demo", "1.0")
    u = Unpacker(1)
    asyncio.run(u.unpack(wheel, _target(tmp_path, "a"), wheel.name))
    (worker,) = u._idle
    worker.proc.kill()
    worker.proc.wait()
    assert asyncio.run(u.unpack(wheel, _target(tmp_path, "b"), wheel.name)) == "demo-1.0.dist-info"
    (again,) = u._idle
    assert again is not worker and u._started == 1
    u.close()


def test_a_worker_that_dies_on_a_wheel_fails_it_and_is_replaced(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path, "demo", "1.0")
    u, worker = _lent_worker()
    assert worker.send(wheel, _target(tmp_path, "a"), wheel.name, (0, 1))
    worker.proc.kill()  # while (or after) it unpacks, before its answer is read
    with pytest.raises(KeaError, match=r"cannot unpack demo-1\.0-py3-none-any\.whl: the unpacking "
                       r"process ended$") as e:  # fmt: skip
        asyncio.run(worker.receive(wheel.name))
    assert e.value.hint and "run the command again" in e.value.hint
    u._release(worker, healthy=False)
    assert u._started == 0
    assert asyncio.run(u.unpack(wheel, _target(tmp_path, "b"), wheel.name)) == "demo-1.0.dist-info"
    u.close()


def test_an_answer_kea_cannot_read_stops_the_worker(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path, "demo", "1.0")
    u, worker = _lent_worker()
    worker._buffer += b"Traceback (most recent call last):\n"  # as if the worker wrote it
    with pytest.raises(KeaError, match="the unpacking process answered what kea cannot read"):
        asyncio.run(worker.receive(wheel.name))
    assert worker.proc.returncode is not None  # stopped: it writes nothing more
    u._release(worker, healthy=False)
    u.close()


def test_through_the_cache_a_worker_dying_midway_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(unpacker, "_SHARED", Unpacker(1))
    cache = Cache(tmp_path / "cache")
    files = {f"pkg/m{i:03}.py": b"x = 1\n" * 200 for i in range(200)}
    wheel = build_wheel(tmp_path, "midway", "1.0", files=files)
    real_send = WorkerProcess.send

    def send_then_die(self: WorkerProcess, *args: Any) -> bool:
        sent = real_send(self, *args)
        self.proc.kill()  # with its request in hand: it may have written some files
        return sent

    monkeypatch.setattr(WorkerProcess, "send", send_then_die)
    with pytest.raises(KeaError, match="the unpacking process ended"):
        asyncio.run(cache.unpack_local_wheel(wheel))
    assert [p.name for p in (cache.root / ARCHIVE).iterdir()] == []
    monkeypatch.setattr(WorkerProcess, "send", real_send)
    asyncio.run(cache.unpack_local_wheel(wheel))  # a new worker
    assert len([p for p in (cache.root / ARCHIVE).iterdir()]) == 1
    unpacker._SHARED.close()


def test_ctrl_c_does_not_stop_a_worker(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path, "demo", "1.0")
    u = Unpacker(1)
    asyncio.run(u.unpack(wheel, _target(tmp_path, "a"), wheel.name))
    (worker,) = u._idle
    # A Ctrl-C at the terminal goes to kea's process group, which the worker is not in ...
    assert os.getpgid(worker.proc.pid) == worker.proc.pid != os.getpgid(0)
    os.kill(worker.proc.pid, signal.SIGINT)  # ... and one sent to it anyway is ignored.
    assert asyncio.run(u.unpack(wheel, _target(tmp_path, "b"), wheel.name)) == "demo-1.0.dist-info"
    assert worker.proc.poll() is None
    u.close()


def _sitecustomize(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: str) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(code)
    path = os.environ.get("PYTHONPATH")
    monkeypatch.setenv("PYTHONPATH", str(site) + (os.pathsep + path if path else ""))


def test_output_while_a_worker_starts_is_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _sitecustomize(tmp_path, monkeypatch, "print('noise', end='')\nprint('more noise')\n")
    wheel = build_wheel(tmp_path, "demo", "1.0")
    u = Unpacker(1)
    assert asyncio.run(u.unpack(wheel, _target(tmp_path), wheel.name)) == "demo-1.0.dist-info"
    assert u._started == 1 and not u._broken
    u.close()


@pytest.mark.parametrize("launched", [False, True], ids=["on-demand", "launched"])
def test_a_worker_that_cannot_start_leaves_the_unpacking_to_the_caller(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, launched: bool
) -> None:
    _sitecustomize(tmp_path, monkeypatch, "import os\nos._exit(3)\n")
    wheel = build_wheel(tmp_path, "demo", "1.0")
    u = Unpacker(2)
    if launched:
        u.launch()  # before any loop, as a run on an empty cache does
    assert asyncio.run(u.unpack(wheel, _target(tmp_path, "a"), wheel.name)) == "demo-1.0.dist-info"
    assert u._broken and u._started == 0
    assert asyncio.run(u.unpack(wheel, _target(tmp_path, "b"), wheel.name)) == "demo-1.0.dist-info"
    # The calling thread checks the whole wheel too, before it writes anything.
    target = _target(tmp_path, "c")
    with pytest.raises(WheelError, match="hash mismatch"):
        asyncio.run(u.unpack(wheel, target, wheel.name, {"sha256": "0" * 64}))
    assert list(target.iterdir()) == []
    assert (tmp_path / "b" / "demo-1.0.dist-info" / "RECORD").is_file()


def test_the_working_directory_cannot_shadow_a_module(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    here = tmp_path / "cwd"
    here.mkdir()
    (here / "json.py").write_text("raise SystemExit(7)\n")
    (here / "zipfile.py").write_text("raise SystemExit(7)\n")
    wheel = build_wheel(tmp_path, "demo", "1.0")
    monkeypatch.chdir(here)
    u = Unpacker(1)
    assert asyncio.run(u.unpack(wheel, _target(tmp_path), wheel.name)) == "demo-1.0.dist-info"
    u.close()


def test_without_a_worker_the_calling_thread_unpacks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "executable", str(tmp_path / "no-such-python"))
    wheel = build_wheel(tmp_path, "demo", "1.0")
    u = Unpacker(2)
    assert asyncio.run(u.unpack(wheel, _target(tmp_path, "a"), wheel.name)) == "demo-1.0.dist-info"
    assert u._broken and u._started == 0
    assert asyncio.run(u.unpack(wheel, _target(tmp_path, "b"), wheel.name)) == "demo-1.0.dist-info"
    # The calling thread checks the whole wheel too, before it writes anything.
    target = _target(tmp_path, "c")
    with pytest.raises(WheelError, match="hash mismatch"):
        asyncio.run(u.unpack(wheel, target, wheel.name, {"sha256": "0" * 64}))
    assert list(target.iterdir()) == []


def test_a_large_wheel_is_split_across_free_workers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = {f"pkg/m{i:03}.py": f"V = {i}\n".encode() * (i + 1) for i in range(120)}
    wheel = build_wheel(tmp_path, "big", "1.0", files=files)
    assert unpacker.member_count(wheel) == 124  # + __init__, METADATA, WHEEL, RECORD
    monkeypatch.setattr(unpacker, "SPLIT_MIN", 100)
    u = Unpacker(2)
    target = _target(tmp_path)
    assert asyncio.run(u.unpack(wheel, target, wheel.name)) == "big-1.0.dist-info"
    assert u._started == 2 and len(u._idle) == 2  # both took a part
    with zipfile.ZipFile(wheel) as zf:
        names = [n for n in zf.namelist() if not n.endswith("/")]
        assert sorted(str(p.relative_to(target)) for p in target.rglob("*") if p.is_file()) == (
            sorted(names)
        )
        for name in names:
            assert (target / name).read_bytes() == zf.read(name)
    u.close()


def _sent_parts(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, tuple[int, int]]]:
    """(wheel file name, part) of every request sent to a worker from now on, in order."""
    sent: list[tuple[str, tuple[int, int]]] = []
    real_send = WorkerProcess.send

    def send(
        self: WorkerProcess, wheel: Path, target: Path, name: str, part: Any, *rest: Any
    ) -> bool:
        sent.append((name, tuple(part)))
        return bool(real_send(self, wheel, target, name, part, *rest))

    monkeypatch.setattr(WorkerProcess, "send", send)
    return sent


def _large_wheel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A wheel of 120 members, large enough to be split (``SPLIT_MIN`` lowered to 100)."""
    monkeypatch.setattr(unpacker, "SPLIT_MIN", 100)
    files = {f"pkg/m{i:03}.py": f"V = {i}\n".encode() for i in range(120)}
    return build_wheel(tmp_path, "big", "1.0", files=files)


def test_a_large_wheel_goes_whole_while_other_wheels_wait_for_a_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    big = _large_wheel(tmp_path, monkeypatch)
    small = [build_wheel(tmp_path, f"small{i}", "1.0") for i in range(3)]
    u = Unpacker(2)
    sent = _sent_parts(monkeypatch)

    async def busy() -> list[str]:
        # Both workers are lent out, so the small wheels queue; the large one then waits for
        # a worker too, and gets one first (the costliest), with small ones still waiting.
        # (Each with more work left than a part may be queued behind.)
        lent = [await u._acquire(wait=True, cost=unpacker.QUEUE_BEHIND + 1) for _ in range(2)]
        tasks = [
            asyncio.ensure_future(u.unpack(w, _target(tmp_path, w.stem), w.name))
            for w in [*small, big]
        ]
        await asyncio.sleep(0.05)
        assert len(u._waiting) == 4
        for worker in lent:
            assert worker is not None
            u._release(worker, healthy=True)
        return list(await asyncio.wait_for(asyncio.gather(*tasks), 60))

    names = asyncio.run(busy())
    assert names == [*(f"small{i}-1.0.dist-info" for i in range(3)), "big-1.0.dist-info"]
    assert sent[0] == (big.name, (0, 1))  # first served, and whole: small ones were waiting
    assert [part for name, part in sent if name == big.name] == [(0, 1)]
    target = tmp_path / big.stem
    with zipfile.ZipFile(big) as zf:
        for name in (n for n in zf.namelist() if not n.endswith("/")):
            assert (target / name).read_bytes() == zf.read(name)
    u.close()


def test_a_bad_member_in_one_part_fails_the_wheel_after_every_part_ends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = {f"pkg/m{i:03}.py": f"V = {i}\n".encode() for i in range(120)}
    wheel = build_wheel(tmp_path, "rec", "1.0", files=files, bad_record_hash="pkg/m119.py")
    monkeypatch.setattr(unpacker, "SPLIT_MIN", 100)
    u = Unpacker(2)
    with pytest.raises(WheelError, match=r"'pkg/m119.py' does not match its RECORD hash"):
        asyncio.run(u.unpack(wheel, _target(tmp_path), wheel.name))
    assert len(u._idle) == 2  # the wheel's fault: both workers stay
    u.close()


def test_a_zip_comment_hides_the_count_and_the_wheel_is_not_split(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wheel = build_wheel(tmp_path, "demo", "1.0")
    with zipfile.ZipFile(wheel, "a") as zf:
        zf.comment = b"a comment"
    assert unpacker.member_count(wheel) == 0
    monkeypatch.setattr(unpacker, "SPLIT_MIN", 1)
    u = Unpacker(2)
    assert asyncio.run(u.unpack(wheel, _target(tmp_path), wheel.name)) == "demo-1.0.dist-info"
    assert u._started == 1  # one worker did it all
    u.close()


def test_without_an_interpreter_to_start_the_caller_unpacks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "executable", "")
    monkeypatch.setattr(unpacker, "_SHARED", None)
    wheel = build_wheel(tmp_path, "demo", "1.0")
    assert (
        asyncio.run(unpacker.unpack(wheel, _target(tmp_path), wheel.name)) == "demo-1.0.dist-info"
    )
    assert unpacker._SHARED is not None and unpacker._SHARED._broken


def test_an_interruption_stops_every_worker_still_writing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = {f"pkg/m{i:03}.py": b"x = 1\n" * 100 for i in range(120)}
    wheel = build_wheel(tmp_path, "stopped", "1.0", files=files)
    monkeypatch.setattr(unpacker, "SPLIT_MIN", 100)
    u = Unpacker(2)
    lent: list[WorkerProcess] = []
    real_acquire = u._acquire

    async def acquire(*, wait: bool, cost: int = 0, behind: bool = True) -> WorkerProcess | None:
        worker = await real_acquire(wait=wait, cost=cost, behind=behind)
        if worker is not None:
            lent.append(worker)
        return worker

    async def never(self: WorkerProcess, filename: str) -> str:
        await asyncio.Event().wait()  # the answer has not come when Ctrl-C cancels the run
        raise AssertionError("not reached")

    monkeypatch.setattr(u, "_acquire", acquire)
    monkeypatch.setattr(WorkerProcess, "receive", never)

    async def interrupted() -> None:
        task = asyncio.ensure_future(u.unpack(wheel, _target(tmp_path), wheel.name))
        while len(lent) < 2:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.01)  # both requests sent, the first answer awaited
        task.cancel()  # what asyncio.run does to the main task at Ctrl-C
        await task

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(interrupted())
    # Both parts' workers are stopped: the one awaited and the one not yet awaited.
    assert len(lent) == 2
    assert all(w.proc.returncode is not None for w in lent)
    assert u._started == 0 and u._idle == []


def test_prestarted_workers_wait_ready_in_the_pool(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path, "demo", "1.0")

    async def prestarted(u: Unpacker) -> list[WorkerProcess]:
        u.prestart()
        assert u._started == 2  # counted at once: an unpack now waits for them
        deadline = time.monotonic() + 30
        while len(u._idle) < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        ready = list(u._idle)
        assert await u.unpack(wheel, _target(tmp_path), wheel.name) == "demo-1.0.dist-info"
        return ready

    u = Unpacker(2)
    ready = asyncio.run(prestarted(u))
    assert len(ready) == 2 and u._started == 2
    assert sorted(map(id, u._idle)) == sorted(map(id, ready))
    u.close()

    async def prestart_broken(u: Unpacker) -> None:
        u.prestart()
        await asyncio.sleep(0.05)

    broken = Unpacker(2, broken=True)
    asyncio.run(prestart_broken(broken))
    assert broken._started == 0 and broken._idle == []


@pytest.mark.parametrize(("limit", "launched"), [(1, 1), (2, 1), (3, 2)])
def test_a_launch_leaves_one_core_to_kea_itself(limit: int, launched: int) -> None:
    u = Unpacker(limit)
    u.launch()
    assert u._started == launched and len(u._launched) == launched
    u.close()
    assert u._started == 0


def test_the_worker_a_launch_left_out_starts_at_the_first_download(tmp_path: Path) -> None:
    u = Unpacker(2)
    u.launch()
    assert u._started == 1

    async def first_download() -> int:
        u.prestart()  # what Cache.store_wheel calls as a download begins
        started = u._started
        deadline = time.monotonic() + 30
        while len(u._idle) < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        return started

    assert asyncio.run(first_download()) == 2
    assert len(u._idle) == 2 and u._launched == []
    u.close()


def test_the_rest_start_once_the_launched_workers_are_ready(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = tmp_path / "gate"
    # Every worker waits for the gate before it says it is ready.
    _sitecustomize(
        tmp_path,
        monkeypatch,
        f"import os, time\nwhile not os.path.exists({str(gate)!r}):\n    time.sleep(0.01)\n",
    )
    u = Unpacker(3)
    u.launch()
    launched = {w.proc.pid for w in u._launched}
    assert len(launched) == 2

    async def follow() -> tuple[int, int]:
        u.follow_launch()
        await asyncio.sleep(0.3)  # the launched ones are still at the gate
        before = u._started
        gate.touch()
        deadline = time.monotonic() + 30
        while len(u._idle) < 3 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        return before, len(u._idle)

    assert asyncio.run(follow()) == (2, 3)
    assert launched < {w.proc.pid for w in u._idle} and u._launched == []
    u.close()
    assert u._started == 0


def test_following_no_launch_starts_nothing() -> None:
    u = Unpacker(2)

    async def follow() -> int:
        u.follow_launch()  # a run that launched nothing starts its workers on first use
        await asyncio.sleep(0)
        return u._started

    assert asyncio.run(follow()) == 0


def test_workers_launched_before_a_loop_serve_it(tmp_path: Path) -> None:
    import select

    wheels = [build_wheel(tmp_path, f"demo{i}", "1.0") for i in range(3)]
    u = Unpacker(3)
    u.launch()  # no event loop yet; all workers but one
    assert u._started == 2 and len(u._launched) == 2
    launched = {w.proc.pid for w in u._launched}
    u.launch()  # no more: the last one is left for the first download
    assert u._started == 2 and len(u._launched) == 2
    for worker in u._launched:  # both ready before the loop asks: neither is started anew
        assert select.select([worker.out_fd], [], [], 30)[0], "the worker never said it is ready"

    async def unpack_all() -> list[str]:
        names = []
        for pair in (wheels[:2], wheels[2:]):  # never more at once than the launched workers
            names += await asyncio.gather(
                *(u.unpack(w, _target(tmp_path, w.stem), w.name) for w in pair)
            )
        return names

    assert asyncio.run(unpack_all()) == [f"demo{i}-1.0.dist-info" for i in range(3)]
    # The launched processes did the work: none other was started.
    assert {w.proc.pid for w in u._idle} == launched and u._launched == []
    assert u._started == 2
    u.close()
    assert u._started == 0


def test_launched_workers_already_ready_join_without_a_turn_of_the_loop(tmp_path: Path) -> None:
    import select

    wheel = build_wheel(tmp_path, "demo", "1.0")
    u = Unpacker(3)
    u.launch()
    launched = list(u._launched)
    assert len(launched) == 2
    for worker in launched:
        # Readable once its ready line is in the pipe (one write, far below PIPE_BUF).
        assert select.select([worker.out_fd], [], [], 30)[0], "the worker never said it is ready"
        worker._buffer += b"printed by a sitecustomize\n"  # skipped, as wait_ready skips it

    async def adopt() -> list[WorkerProcess]:
        u._adopt()
        joined = list(u._idle)  # before any await: no task, no turn of the loop
        assert await u.unpack(wheel, _target(tmp_path), wheel.name) == "demo-1.0.dist-info"
        return joined

    assert sorted(map(id, asyncio.run(adopt()))) == sorted(map(id, launched))
    assert u._launched == [] and u._started == 2
    u.close()


def _reader(data: bytes, *, end: bool, fds: list[int]) -> WorkerProcess:
    """A WorkerProcess reading ``data`` from a pipe (closed after it with ``end``), no process."""
    r, w = os.pipe()
    os.write(w, data)
    fds.append(r)
    if end:
        os.close(w)
    else:
        fds.append(w)
    worker = object.__new__(WorkerProcess)
    worker.out_fd = r
    worker._buffer = bytearray()
    return worker


def test_ready_now_reads_what_is_there_without_waiting() -> None:
    fds: list[int] = []
    try:
        said = _reader(b"a .pth file printed this\n" + READY, end=False, fds=fds)
        assert said.ready_now() and said._buffer == b""
        partial = _reader(b"a line\nkea-unpack", end=False, fds=fds)  # ready line not whole
        assert not partial.ready_now() and partial._buffer == b"kea-unpack"
        nothing = _reader(b"", end=False, fds=fds)
        assert not nothing.ready_now()  # returns at once: select() says nothing is there
        ended = _reader(b"Traceback (most recent call last):\n", end=True, fds=fds)
        assert not ended.ready_now()
    finally:
        for fd in fds:
            os.close(fd)


def test_launched_workers_never_used_end_at_close() -> None:
    u = Unpacker(2)
    u.launch()
    launched = list(u._launched)
    u.close()  # waits for them: each ends at end of input (or on the pipe closed under it)
    assert all(w.proc.returncode is not None for w in launched)
    assert u._launched == [] and u._started == 0


def test_a_launch_without_an_interpreter_starts_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "executable", str(tmp_path / "no-such-python"))
    u = Unpacker(2)
    u.launch()
    assert u._broken and u._started == 0 and u._launched == []


def test_an_unpack_waits_for_a_worker_still_starting(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path, "demo", "1.0")
    u = Unpacker(1)

    async def at_once() -> list[str]:
        u.prestart()  # the only slot is taken by a worker that is not ready yet
        return list(
            await asyncio.gather(
                u.unpack(wheel, _target(tmp_path, "a"), wheel.name),
                u.unpack(wheel, _target(tmp_path, "b"), wheel.name),
            )
        )

    assert asyncio.run(at_once()) == ["demo-1.0.dist-info"] * 2
    assert u._started == 1 and len(u._idle) == 1
    u.close()


def test_a_worker_starts_without_the_heavy_modules() -> None:
    # What a worker loads before it says it is ready: the worker module and what unpacking a
    # wheel read whole needs. typing alone took 5 ms, and the whole start 55 ms against 34.
    code = (
        "import sys\n"
        "from kea.cache.worker import serve\n"
        "import kea.cache.archive, kea.cache.extract, kea.cache.zipread\n"
        "print(' '.join(sorted(sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-P", "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    heavy = {"typing", "pathlib", "logging", "subprocess", "zipfile", "asyncio", "runpy"}
    assert heavy.isdisjoint(out), sorted(heavy.intersection(out))
    assert "deflate" in out and "hashlib" in out


def test_a_request_longer_than_an_atomic_pipe_write_arrives_whole(tmp_path: Path) -> None:
    # Two paths of ~2,300 bytes each: the request line is past 4 KiB, which a pipe may take
    # in more than one write.
    deep = tmp_path
    for i in range(9):
        deep = deep / (f"{i}" * 250)
    deep.mkdir(parents=True)
    wheel = build_wheel(deep, "demo", "1.0")
    target = _target(deep)
    assert len(str(wheel)) + len(str(target)) > 4096
    u = Unpacker(1)
    assert asyncio.run(u.unpack(wheel, target, wheel.name)) == "demo-1.0.dist-info"
    assert (target / "demo-1.0.dist-info" / "RECORD").is_file()
    u.close()


def test_waiting_parts_get_a_worker_costliest_first() -> None:
    u = Unpacker(1)

    async def scenario() -> list[str]:
        lent = await u._acquire(wait=True, cost=unpacker.QUEUE_BEHIND + 1)  # none queue behind
        assert lent is not None
        order: list[str] = []

        async def part(name: str, cost: int) -> None:
            worker = await u._acquire(wait=True, cost=cost)
            assert worker is lent
            order.append(name)
            u._release(worker, healthy=True)

        waiting = [("small", 10), ("big", 1000), ("middle", 100), ("big, later", 1000)]
        tasks = [asyncio.ensure_future(part(n, c)) for n, c in waiting]
        await asyncio.sleep(0.01)  # all four wait for the only worker
        u._release(lent, healthy=True)
        await asyncio.wait_for(asyncio.gather(*tasks), 10)
        return order

    assert asyncio.run(scenario()) == ["big", "big, later", "middle", "small"]
    assert u._waiting == []
    u.close()


def test_a_waiting_part_is_lent_a_worker_with_one_small_part_left() -> None:
    u = Unpacker(1)

    async def scenario() -> None:
        lent = await u._acquire(wait=True, cost=unpacker.QUEUE_BEHIND + 1)  # none queue behind
        assert lent is not None
        a = asyncio.ensure_future(u._acquire(wait=True, cost=100))
        whole = asyncio.ensure_future(u._acquire(wait=True, cost=50, behind=False))
        b = asyncio.ensure_future(u._acquire(wait=True, cost=10))
        await asyncio.sleep(0.01)
        assert not (a.done() or whole.done() or b.done())
        u._release(lent, healthy=True)
        assert await asyncio.wait_for(a, 10) is lent
        # a's part is small: b, the costliest waiter that takes a busy worker, is lent it
        # before a's part ends, ahead of the costlier part that never queues behind (a large
        # wheel that may yet be split).
        assert await asyncio.wait_for(b, 10) is lent
        assert list(lent.costs) == [100, 10] and not whole.done()
        u._release(lent, healthy=True)  # a's part answered; b's is under way
        await asyncio.sleep(0.01)
        assert not whole.done()
        u._release(lent, healthy=True)  # b's too: the worker is free
        assert await asyncio.wait_for(whole, 10) is lent
        u._release(lent, healthy=True)

    asyncio.run(scenario())
    assert u._waiting == [] and len(u._idle) == 1 and not u._busy
    u.close()


async def _a_part_queued_behind_and_one_waiting(
    u: Unpacker,
) -> tuple[WorkerProcess, asyncio.Future[WorkerProcess | None]]:
    """On a one-worker ``u``: the worker lent a part of cost 10, a part of cost 5 queued
    behind it (nothing waits), and a part of cost 7 waiting."""
    lent = await u._acquire(wait=True, cost=10)
    assert lent is not None
    assert await u._acquire(wait=True, cost=5) is lent
    waiting = asyncio.ensure_future(u._acquire(wait=True, cost=7))
    await asyncio.sleep(0.01)
    assert not waiting.done()  # the worker has two parts already
    return lent, waiting


def test_a_waiter_lent_a_busy_worker_then_interrupted_gives_its_place_up() -> None:
    u = Unpacker(1)

    async def scenario() -> None:
        lent, c = await _a_part_queued_behind_and_one_waiting(u)
        d = asyncio.ensure_future(u._acquire(wait=True, cost=3))
        await asyncio.sleep(0.01)
        u._release(lent, healthy=True)  # the first answered: c is lent the worker ...
        assert list(lent.costs) == [5, 7] and not d.done()
        c.cancel()  # ... and interrupted before it sends anything: d takes its place
        assert await asyncio.wait_for(d, 10) is lent
        with pytest.raises(asyncio.CancelledError):
            await c
        assert list(lent.costs) == [5, 3]
        for _ in range(2):
            u._release(lent, healthy=True)

    asyncio.run(scenario())
    assert u._waiting == [] and len(u._idle) == 1 and not u._busy
    u.close()


def test_a_lent_waiter_interrupted_after_the_worker_s_other_parts_ended_leaves_it_idle() -> None:
    u = Unpacker(1)

    async def scenario() -> None:
        lent, c = await _a_part_queued_behind_and_one_waiting(u)
        u._release(lent, healthy=True)  # the first answered: c is lent the worker ...
        u._release(lent, healthy=True)  # ... the second too, before c runs ...
        c.cancel()  # ... and c is interrupted: nothing was sent, the worker has no part
        with pytest.raises(asyncio.CancelledError):
            await c
        assert u._idle == [lent] and not u._busy and not lent.costs
        assert await asyncio.wait_for(u._acquire(wait=True, cost=1), 10) is lent
        u._release(lent, healthy=True)

    asyncio.run(scenario())
    assert u._waiting == [] and len(u._idle) == 1 and u._started == 1
    u.close()


def _ready_unpacker(limit: int) -> Unpacker:
    """An unpacker whose ``limit`` workers are started, ready and idle (as a run's are when
    its wheels arrive)."""
    u = Unpacker(limit)

    async def ready() -> None:
        u.prestart()
        deadline = time.monotonic() + 30
        while len(u._idle) < limit and time.monotonic() < deadline:
            await asyncio.sleep(0.01)

    asyncio.run(ready())
    assert len(u._idle) == limit
    return u


def _traced(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """("sent" or "answered", wheel file name) for every request to a worker, in order."""
    trace: list[tuple[str, str]] = []
    real_send, real_receive = WorkerProcess.send, WorkerProcess.receive

    def send(
        self: WorkerProcess, wheel: Path, target: Path, name: str, part: Any, *rest: Any
    ) -> bool:
        trace.append(("sent", name))
        return bool(real_send(self, wheel, target, name, part, *rest))

    async def receive(self: WorkerProcess, name: str) -> str:
        try:
            return await real_receive(self, name)
        finally:
            trace.append(("answered", name))

    monkeypatch.setattr(WorkerProcess, "send", send)
    monkeypatch.setattr(WorkerProcess, "receive", receive)
    return trace


def test_a_small_part_is_queued_behind_a_busy_worker_s_small_part(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wheels = [build_wheel(tmp_path, f"demo{i}", "1.0") for i in range(3)]
    trace = _traced(monkeypatch)
    u = _ready_unpacker(1)

    async def together() -> list[str]:
        return list(
            await asyncio.gather(*(u.unpack(w, _target(tmp_path, w.stem), w.name) for w in wheels))
        )

    assert asyncio.run(together()) == [f"demo{i}-1.0.dist-info" for i in range(3)]
    # The second is sent before the first is answered; the third waits (one part ahead at most).
    names = [w.name for w in wheels]
    assert trace[:3] == [("sent", names[0]), ("sent", names[1]), ("answered", names[0])]
    assert [n for kind, n in trace if kind == "answered"] == names
    assert u._started == 1 and len(u._idle) == 1 and not u._busy
    u.close()


def test_a_part_queued_behind_a_refused_wheel_is_unpacked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = build_wheel(tmp_path, "evil", "1.0", files={"../evil.py": b"x"})
    good = build_wheel(tmp_path, "demo", "1.0")
    trace = _traced(monkeypatch)
    u = _ready_unpacker(1)

    async def together() -> list[object]:
        return list(
            await asyncio.gather(
                u.unpack(bad, _target(tmp_path, "bad"), bad.name),
                u.unpack(good, _target(tmp_path, "good"), good.name),
                return_exceptions=True,
            )
        )

    refused, unpacked = asyncio.run(together())
    assert trace[:2] == [("sent", bad.name), ("sent", good.name)]  # queued behind it
    assert isinstance(refused, WheelError) and unpacked == "demo-1.0.dist-info"
    assert (tmp_path / "good" / "demo-1.0.dist-info" / "RECORD").is_file()
    assert u._started == 1 and len(u._idle) == 1  # the wheel's fault: the worker stays
    u.close()


def test_a_large_wheel_goes_whole_while_a_part_is_queued_behind_a_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    big = _large_wheel(tmp_path, monkeypatch)
    trace = _traced(monkeypatch)
    u = _ready_unpacker(2)

    async def scenario() -> str:
        one, other, behind = [await u._acquire(wait=True, cost=c) for c in (10, 20, 10)]
        assert behind is one and one is not other  # queued behind the one with less left
        task = asyncio.ensure_future(u.unpack(big, _target(tmp_path, "big"), big.name))
        await asyncio.sleep(0.01)  # waits: a large wheel is never queued behind
        assert other is not None
        u._release(other, healthy=True)  # free: the large wheel gets it, while one has two
        name = await asyncio.wait_for(task, 30)
        for _ in range(2):
            assert one is not None
            u._release(one, healthy=True)
        return name

    assert asyncio.run(scenario()) == "big-1.0.dist-info"
    assert [t for t in trace if t[0] == "sent"] == [("sent", big.name)]  # whole: one request
    assert len(u._idle) == 2 and not u._busy
    u.close()


def test_a_waiter_woken_then_interrupted_hands_the_worker_on(tmp_path: Path) -> None:
    u = Unpacker(1)

    async def scenario() -> None:
        lent = await u._acquire(wait=True, cost=unpacker.QUEUE_BEHIND + 1)  # none queue behind
        assert lent is not None
        first = asyncio.ensure_future(u._acquire(wait=True))
        second = asyncio.ensure_future(u._acquire(wait=True))
        await asyncio.sleep(0.01)  # both wait for the only worker
        u._release(lent, healthy=True)  # wakes the first ...
        first.cancel()  # ... which is interrupted before it runs
        assert await asyncio.wait_for(second, 10) is lent
        with pytest.raises(asyncio.CancelledError):
            await first
        u._release(lent, healthy=True)

    asyncio.run(scenario())
    assert u._started == 1 and len(u._idle) == 1 and u._waiting == []
    u.close()


def test_an_interruption_while_a_part_s_worker_starts_leaves_no_worker_astray(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = {f"pkg/m{i:03}.py": b"x = 1\n" for i in range(120)}
    wheel = build_wheel(tmp_path, "split", "1.0", files=files)
    monkeypatch.setattr(unpacker, "SPLIT_MIN", 100)
    real_ready = WorkerProcess.wait_ready
    started: list[WorkerProcess] = []

    async def second_never_ready(self: WorkerProcess) -> bool:
        started.append(self)
        if len(started) == 2:
            await asyncio.Event().wait()  # the second part's worker is still starting
        return await real_ready(self)

    monkeypatch.setattr(WorkerProcess, "wait_ready", second_never_ready)
    u = Unpacker(2)

    async def interrupted() -> None:
        task = asyncio.ensure_future(u.unpack(wheel, _target(tmp_path), wheel.name))
        while len(started) < 2:
            await asyncio.sleep(0.01)
        task.cancel()
        await task

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(interrupted())
    first, second = started
    assert second.proc.returncode is not None  # its start was stopped
    # The first part's worker had its request: stopped if it was still writing, else back in
    # the pool. Either way the pool counts exactly the workers it holds, all alive.
    if first.proc.returncode is None:
        assert u._idle == [first]
    assert u._started == len(u._idle)
    assert all(w.proc.poll() is None for w in u._idle)
    u.close()


def test_a_cancelled_unpack_in_a_thread_returns_once_the_thread_is_done(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    from kea.cache import archive

    wheel = build_wheel(tmp_path, "demo", "1.0")
    target = _target(tmp_path)
    started, finished = threading.Event(), threading.Event()

    def slow(wheel: Path, target: Path, filename: str, **kw: Any) -> str:
        started.set()
        time.sleep(0.3)
        (Path(target) / "late.txt").write_text("written after the cancellation")
        finished.set()
        return "demo-1.0.dist-info"

    monkeypatch.setattr(archive, "unpack_wheel", slow)
    u = Unpacker(1, broken=True)  # no worker: the wheel is unpacked in a thread

    async def scenario() -> None:
        task = asyncio.ensure_future(u.unpack(wheel, target, wheel.name))
        while not started.is_set():
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # The caller removes the target next: nothing may still be writing into it.
        assert finished.is_set()

    asyncio.run(scenario())
    assert (target / "late.txt").is_file()
