"""kea serve's htpasswd: only real hashes verify, and a bad line costs that line alone.

Both from a black-box audit: libpass's htpasswd context falls back to plaintext for a hash it
does not know, so a yescrypt entry let in whoever sent the hash string as the password (and a
plaintext line worked as a password); and one line without a colon made the whole file
unreadable, so every user got 401 and nothing was logged.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tests.e2e.harness import User, token
from tests.serve.conftest import Wheels
from tests.serve.harness import KeaServe, http_get

YESCRYPT = "$y$j9T$F5Jx5fExrKuPp53xLKQ..1$5m2Y39jLL81UpHg9O2J4WZICd/e5flCGQFnVN2vEqK2"


def _config(directory: Path) -> str:
    return f"""
[server]
cache-dir = "cache"

[auth]
htpasswd = "htpasswd"

[[route]]
name = "local"
match = "*"
directory = "{directory}"
read = ["authenticated"]
"""


def test_unknown_hashes_and_plaintext_never_verify_and_a_bad_line_is_skipped(
    tmp_path: Path, wheels: Wheels
) -> None:
    from passlib.apache import HtpasswdFile

    directory = tmp_path / "packages"
    shutil.copytree(wheels.local_dir, directory)
    workdir = tmp_path / "serve"
    workdir.mkdir()
    carol = User("carol", token("pw-carol-"))
    ht = HtpasswdFile(str(workdir / "htpasswd"), new=True, default_scheme="apr_md5_crypt")
    ht.set_password(carol.name, carol.password)
    ht.save()
    with (workdir / "htpasswd").open("a") as f:
        f.write(f"yuser:{YESCRYPT}\nplainuser:Plain-Text-Pw-Hh5\nthis line has no colon\n")
    dave = User("dave", token("pw-dave-"))
    other = HtpasswdFile(new=True, default_scheme="apr_md5_crypt")
    other.set_password(dave.name, dave.password)
    with (workdir / "htpasswd").open("ab") as f:
        f.write(b"caf\xe9:$apr1$x$y\n")  # not UTF-8: that line alone is skipped
        f.write(other.to_string().strip() + b":a-group-field\n")  # extra fields: ignored
    serve = KeaServe(workdir, _config(directory), ip="127.0.0.6")
    try:
        page = serve.index + "local-pkg/"
        assert http_get(page, {"Authorization": carol.header})[0] == 200
        assert http_get(page, {"Authorization": dave.header})[0] == 200
        for user, password in (("yuser", YESCRYPT), ("plainuser", "Plain-Text-Pw-Hh5")):
            status, _, _ = http_get(page, {"Authorization": User(user, password).header})
            assert status == 401, user
        log = serve.text()
        assert "line 4, 5 is not user:hash in UTF-8 (skipped)" in log, log
        assert "yuser's entry is in a format kea serve cannot verify" in log, log
        assert "plainuser's entry is in a format kea serve cannot verify" in log, log
        assert carol.password not in log and "Plain-Text-Pw-Hh5" not in log
    finally:
        serve.stop()

    proc = subprocess.run(
        [sys.executable, "-m", "kea", "serve", "--config", str(serve.config_path), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=workdir,
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines[0].startswith("error: htpasswd file ") and "line 4, 5 is not user:hash" in lines[0]
    assert lines[0].endswith("(2 more problem(s))"), lines
    assert "Traceback" not in proc.stderr
