from email.utils import formatdate

import pytest

from kea.http.retry import RETRY_AFTER_CAP, backoff_delay, parse_retry_after


def test_retry_after_seconds_and_date() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(" 0 ") == 0.0
    now = 1_700_000_000.0
    date = formatdate(now + 7, usegmt=True)
    assert parse_retry_after(date, now=now) == pytest.approx(7.0, abs=1.0)
    assert parse_retry_after(formatdate(now - 100, usegmt=True), now=now) == 0.0


@pytest.mark.parametrize("value", [None, "", "soon", "-1", "1.5x"])
def test_retry_after_garbage_is_none(value: str | None) -> None:
    assert parse_retry_after(value) is None


def test_backoff_grows_and_is_capped() -> None:
    delays = [backoff_delay(i, base=0.5, cap=3.0) for i in range(5)]
    assert delays == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_retry_after_wins_but_is_capped() -> None:
    assert backoff_delay(0, retry_after=2.0) == 2.0
    assert backoff_delay(3, retry_after=10_000.0) == RETRY_AFTER_CAP
