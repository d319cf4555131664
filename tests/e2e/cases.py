"""All cases of specs/auth.md ("Cases every implementation must pass"), by short name.

``test_auth_cases_e2e.py`` runs each at ``-v``; ``test_redaction_e2e.py`` runs each again at
``-vvv`` and scans all output for the case's secrets (case 24).
"""

from __future__ import annotations

from collections.abc import Callable

from tests.e2e import cases_redirects, cases_sources
from tests.e2e.harness import World

CASES: dict[str, Callable[[World], None]] = {
    name.split("_", 1)[0]: fn
    for module in (cases_redirects, cases_sources)
    for name, fn in sorted(vars(module).items())
    if name.startswith("case") and callable(fn)
}
