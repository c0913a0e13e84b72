"""Google's ``Retry-After`` as an HTTP-date is read too (connectors/retry_after.py), not only delta-seconds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from connectors.base import TransientError
from connectors.google.provider import GoogleCalendarProvider
from tests.support.fakes.google_calendar import FakeGoogleCalendar


def test_a_retry_after_date_becomes_seconds_from_now(
    provider: GoogleCalendarProvider, fake: FakeGoogleCalendar, sleeps: list[float]
) -> None:
    when = datetime.now(UTC) + timedelta(minutes=10)
    fake.fail_next(1, 429, "rateLimitExceeded", retry_after=when.strftime("%a, %d %b %Y %H:%M:%S GMT"))
    with pytest.raises(TransientError) as caught:
        provider.list_calendars()
    assert caught.value.retry_after is not None and 500 < caught.value.retry_after <= 600
    assert sleeps == []  # too long to sleep inside the call: the worker's retry waits it out
