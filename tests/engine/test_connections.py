"""The connection aggregate's rules on plain values (docs/sync.md#connections): no store, no provider."""

from __future__ import annotations

import pytest

from booking_engine.connections import (
    CalendarChoice,
    CalendarEntry,
    ConnectionStatus,
    Provider,
    is_syncable,
    same_calendar,
)
from booking_engine.errors import ValidationError

WORK = CalendarEntry("https://dav.example.org/cal/work/", "Work", writable=True)
HOLIDAYS = CalendarEntry("https://dav.example.org/cal/holidays/", "Holidays", writable=False)
HOME = CalendarEntry("https://dav.example.org/cal/home/", "Home", writable=True)
ACCOUNT = [HOLIDAYS, WORK, HOME]


def test_active_and_error_connections_sync_the_others_do_not() -> None:
    assert [s for s in ConnectionStatus if is_syncable(s)] == [ConnectionStatus.ACTIVE, ConnectionStatus.ERROR]
    assert not is_syncable("reauth_required") and not is_syncable("disconnected")
    assert {str(p) for p in Provider} == {"google", "microsoft", "caldav", "ics"}


def test_a_trailing_slash_does_not_make_another_calendar() -> None:
    assert same_calendar("https://x/cal/a/", "https://x/cal/a")
    assert not same_calendar("https://x/cal/a/", "https://x/cal/b/")


def test_default_choice_is_every_calendar_busy_and_the_first_writable_destination() -> None:
    assert CalendarChoice.default(ACCOUNT) == CalendarChoice((HOLIDAYS.id, WORK.id, HOME.id), WORK.id)
    assert CalendarChoice.default([HOLIDAYS]) == CalendarChoice((HOLIDAYS.id,), None)


def test_default_choice_with_a_primary_calendar_is_that_calendar() -> None:
    primary = CalendarEntry("Expert@Example.org", "Expert", writable=True)
    assert CalendarChoice.default([WORK, primary], primary="expert@example.org") == CalendarChoice(
        (primary.id,), primary.id
    )
    # No entry for the address (a Workspace alias): the first writable calendar stands in.
    assert CalendarChoice.default([HOLIDAYS, HOME], primary="alias@example.org") == CalendarChoice(
        (HOME.id,), HOME.id
    )
    # A read-only primary is busy but receives nothing.
    assert CalendarChoice.default([HOLIDAYS], primary="nobody@example.org") == CalendarChoice((HOLIDAYS.id,), None)
    assert CalendarChoice.default([], primary="a@example.org") == CalendarChoice((), None)


def test_a_pick_is_stored_as_the_account_spells_it_without_duplicates() -> None:
    choice = CalendarChoice.picked(ACCOUNT, [WORK.id.rstrip("/"), WORK.id], HOME.id.rstrip("/"))
    assert choice == CalendarChoice((WORK.id,), HOME.id)


def test_left_out_parts_keep_the_current_choice() -> None:
    current = CalendarChoice((WORK.id,), WORK.id)
    assert CalendarChoice.picked(ACCOUNT, None, None, current=current, destination_given=False) == current
    assert CalendarChoice.picked(ACCOUNT, None, None, current=current) == CalendarChoice((WORK.id,), None)


@pytest.mark.parametrize(
    ("busy", "destination", "field"),
    [
        ([], WORK.id, "busyCalendars"),
        (["https://dav.example.org/cal/other/"], None, "busyCalendars"),
        ([WORK.id], HOLIDAYS.id, "destinationCalendar"),
        ([WORK.id], "https://dav.example.org/cal/other/", "destinationCalendar"),
        ([f"https://dav.example.org/cal/{n}/" for n in range(51)], None, "busyCalendars"),
    ],
    ids=["nothing-busy", "unknown-busy", "read-only-destination", "unknown-destination", "too-many"],
)
def test_an_invalid_pick_names_its_field(busy: list[str], destination: str | None, field: str) -> None:
    with pytest.raises(ValidationError) as refused:
        CalendarChoice.picked(ACCOUNT, busy, destination)
    assert refused.value.extra["field"] == field
