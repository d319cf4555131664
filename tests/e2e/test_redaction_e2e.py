"""specs/auth.md case 24: every case again at ``-vvv``; no password, token or signature of the case
may appear in kea's stdout or stderr.

Each case registers its secrets (passwords, the Base64 of ``user:password`` as it would appear in
an Authorization header, signatures and credentials of pre-signed URLs, proxy and keyring
passwords). A case whose behaviour assertions fail is reported by its own test in
``test_auth_cases_e2e.py``; here only leaks fail, but every kea run the case made is scanned.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.e2e import cases
from tests.e2e.harness import World

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("case", sorted(cases.CASES))
def test_no_secret_in_output_at_vvv(case: str, make_world: Callable[[int], World]) -> None:
    world = make_world(3)
    try:
        cases.CASES[case](world)
    except AssertionError:
        pass  # behaviour is judged by the case's own test; here we judge only the output
    assert world.runs, f"{case} ran no kea command before failing"
    assert world.secrets, f"{case} registered no secret to look for"
    leaks = world.leaks()
    assert not leaks, f"{case}: secrets in kea's output at -vvv:\n" + "\n".join(leaks)
