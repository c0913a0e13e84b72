"""Google's own "slow down" pauses the account's key in the shared limiter: another worker (its
own limiter, nothing in common but Redis or the database) does not call Google until it ends,
while another account of the same project still does."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from config.settings import Settings
from connectors.base import TransientError
from connectors.google.provider import GoogleCalendarProvider
from connectors.rate_limits.limiter import RateLimiter
from connectors.rate_limits.provider_limits import ProviderLimits
from tests.support.fakes.google_calendar import FakeGoogleCalendar
from tests.support.google import CLIENT_ID
from tests.support.rate_limits import SharedStore, open_store


@pytest.mark.parametrize(("status", "reason"), [(429, "rateLimitExceeded"), (403, "userRateLimitExceeded")])
def test_google_slowing_down_pauses_the_account_for_every_worker(
    shared: SharedStore, fake: FakeGoogleCalendar, make_provider: Callable[..., GoogleCalendarProvider],
    settings: Settings, status: int, reason: str,
) -> None:
    section = settings.rate_limit.model_copy(update={"key_prefix": shared.prefix})
    worker_a = RateLimiter(open_store(shared.kind, shared.url))
    worker_b = RateLimiter(open_store(shared.kind, shared.url))
    try:
        def gate(limiter: RateLimiter, user: str):  # type: ignore[no-untyped-def]
            return ProviderLimits(limiter, section).google(user=user, project=CLIENT_ID, connection_id="conn-1")

        fake.fail_next(1, status, reason, retry_after="30")
        with pytest.raises(TransientError):
            make_provider(gate=gate(worker_a, "expert@example.com")).list_calendars()
        served = len(fake.calls())

        with pytest.raises(TransientError) as raised:
            make_provider(gate=gate(worker_b, "expert@example.com")).list_calendars()
        assert raised.value.retry_after is not None and raised.value.retry_after > 20
        assert len(fake.calls()) == served  # worker B never reached Google

        assert make_provider(gate=gate(worker_b, "colleague@example.com")).list_calendars()
        assert len(fake.calls()) == served + 1  # the project is not paused, only that account
    finally:
        worker_a.close()
        worker_b.close()


def test_every_api_request_takes_a_turn(fake: FakeGoogleCalendar, make_provider: Callable[..., GoogleCalendarProvider],
                                        settings: Settings) -> None:
    """Pages and retries included: the gate sits on the HTTP connection, not on the calls."""
    from connectors.rate_limits.memory_store import MemoryStore

    fake.fail_next(1, 503, "backendError")
    turns: list[str] = []
    limiter = RateLimiter(MemoryStore(), on_grant=lambda plan: turns.append(plan.label))
    gate = ProviderLimits(limiter, settings.rate_limit).google(user="expert@example.com", project=CLIENT_ID)
    provider = make_provider(gate=gate, page_size=1)
    for index in range(3):
        fake.add_calendar(f"extra-{index}@example.com", f"Extra {index}", "UTC", "reader")
    provider.list_calendars()
    assert len(turns) == len(fake.calls()) >= 2
    assert all("example.com" not in label for label in turns)  # keys are hashed
