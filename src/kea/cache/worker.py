"""An unpacking worker process (``kea.cache.unpacker`` starts and drives them).

Started as ``python -P -c "from kea.cache.worker import main; main()"`` (``-c``: runpy costs
another 4 ms). It imports only what unpacking needs: no ``typing``, ``pathlib``, ``logging``,
``subprocess`` or ``zipfile`` (until a wheel needs ``zipfile``), which took a worker 55 ms to
start (tools venv, ``hyperfine``) where the interpreter alone takes 11 and these imports 28.
"""

import json
import os
import sys

READY = b"kea-unpacker ready\n"


def serve() -> None:
    """One JSON request per line on stdin, one reply per line on stdout, until end of input."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the installing process decides about Ctrl-C
    from kea.cache.archive import WheelError, unpack_wheel
    from kea.errors import KeaError

    # Replies go to a copy of stdout; stdout itself now leads nowhere, so that nothing printed
    # from here on can come between them.
    out = os.fdopen(os.dup(1), "wb")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)
    out.write(READY)
    out.flush()
    for line in sys.stdin.buffer:
        wheel, target, filename, k, n, hashes = json.loads(line.decode("utf-8", "surrogateescape"))
        reply: list[object]
        try:
            # One thread: the threads of one process would take turns with the GIL; the other
            # workers are the parallelism (a large wheel is split across them).
            dist_info = unpack_wheel(wheel, target, filename, part=(k, n), threads=1, hashes=hashes)
            reply = ["ok", dist_info]
        except WheelError as e:
            reply = ["wheel", e.message, e.hint]
        except KeaError as e:
            reply = ["kea", e.message, e.hint]
        except OSError as e:
            reply = ["os", e.errno, e.strerror, e.filename]
        except Exception as e:  # reported to the installing process, which fails the run
            reply = ["kea", f"{type(e).__name__}: {e}", "this is a bug in kea"]
        out.write(json.dumps(reply).encode("utf-8", "surrogateescape") + b"\n")
        out.flush()
    out.close()


def main() -> None:
    """``serve``, then exit at once: every answer is written and flushed by then, the
    interpreter's teardown would only free memory, and kea may be waiting for this process."""
    serve()
    os._exit(0)
