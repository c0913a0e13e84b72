"""``connectors.retry_after.parse_retry_after``: both forms of RFC 9110 10.2.3, junk, and the cap."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from connectors.retry_after import MAX_RETRY_AFTER, parse_retry_after

NOW = datetime(1994, 11, 6, 8, 49, 7, tzinfo=UTC)  # 30 s before RFC 9110's example date


@pytest.mark.parametrize(("value", "seconds"), [
    ("120", 120.0), ("0", 0.0), ("007", 7.0), (" 5\t", 5.0), (str(int(MAX_RETRY_AFTER)), MAX_RETRY_AFTER),
])
def test_delta_seconds(value: str, seconds: float) -> None:
    assert parse_retry_after(value, NOW) == seconds


@pytest.mark.parametrize("value", [
    "Sun, 06 Nov 1994 08:49:37 GMT",  # IMF-fixdate, the preferred form
    "Sunday, 06-Nov-94 08:49:37 GMT",  # obsolete RFC 850 form
    "Sun Nov  6 08:49:37 1994",  # obsolete asctime form (no zone: GMT)
])
def test_http_dates_in_all_three_forms_count_from_now(value: str) -> None:
    assert parse_retry_after(value, NOW) == 30.0
    assert parse_retry_after(value, NOW + timedelta(seconds=10)) == 20.0


def test_a_date_already_past_means_now() -> None:
    assert parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", NOW + timedelta(hours=1)) == 0.0


def test_without_now_a_date_counts_from_the_clock() -> None:
    soon = (datetime.now(UTC) + timedelta(minutes=10)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    seconds = parse_retry_after(soon)
    assert seconds is not None and 500 < seconds <= 600


@pytest.mark.parametrize("value", [
    None, "", "   ", "soon", "-5", "-0", "+5", "1.5", "1e3", "0x10", "inf", "nan", "5s", "120 seconds",
    "٣", "²",  # digits, but not ASCII DIGIT
    "Mon, 99 Nov 1994 08:49:37 GMT", "Sun, 06 Nov 1994 25:61:61 GMT", "Nov 1994",
])
def test_junk_and_negative_values_are_none(value: str | None) -> None:
    assert parse_retry_after(value, NOW) is None


@pytest.mark.parametrize("value", [
    str(int(MAX_RETRY_AFTER) + 1), "31536000", "9" * 5000,  # past int()'s 4,300 digits
    "Fri, 31 Dec 9999 23:59:59 GMT", "Fri, 31 Dec 9999 23:59:59 -1200",  # past datetime's range in UTC
])
def test_absurd_values_are_capped_at_a_day(value: str) -> None:
    assert parse_retry_after(value, NOW) == MAX_RETRY_AFTER == 86_400.0
