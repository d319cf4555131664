"""The resolver core is pure: importing and running it loads no network code."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def test_core_imports_no_io_modules() -> None:
    code = textwrap.dedent(
        """
        import sys
        from kea.resolver import BaseProvider, resolve
        from packaging.version import Version

        class P(BaseProvider):
            def versions(self, name):
                return [Version("1.0")]
            def dependencies(self, name, version):
                return []

        assert dict(resolve(["a"], P())) == {"a": Version("1.0")}
        try:
            resolve(["a>=2"], P())
        except Exception as e:
            assert "unsatisfiable" in str(e)
        bad = sorted(
            m for m in sys.modules
            if m.split(".")[0] in ("aiohttp", "rich", "asyncio", "socket", "ssl")
            or m.startswith(("kea.http", "kea.index", "kea.resolver.provider"))
        )
        print(",".join(bad))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == ""
