"""E-mail through a real SMTP server (aiosmtpd): recipients, subjects, iCalendar invites."""

from __future__ import annotations

from datetime import timedelta
from email.message import EmailMessage

from icalendar import Calendar
from sqlalchemy import select, update

from booking_engine.services import booking_requests, bookings, users
from booking_engine.services import reminders as reminder_service
from booking_engine.store.db import Store
from booking_engine.store.tables import users as users_table
from booking_engine.store.worker_tables import notification_log
from config.settings import Settings
from tests.support.factories import NOW
from tests.support.scenario import (
    EXPERT,
    EXPERT_EMAIL,
    USER,
    USER_EMAIL,
    book,
    next_slot,
    parties,
    redispatch_everything,
)
from tests.support.worker import Mailbox
from worker import outbox, wiring


def _invite(msg: EmailMessage) -> Calendar | None:
    for part in msg.walk():
        if part.get_content_type() == "text/calendar":
            return Calendar.from_ical(part.get_payload(decode=True))
    return None


def _vevent(cal: Calendar) -> dict[str, str]:
    [event] = cal.walk("VEVENT")
    return {"UID": str(event["UID"]), "SEQUENCE": str(event["SEQUENCE"]), "METHOD": str(cal["METHOD"]),
            "DTSTART": event.decoded("DTSTART").isoformat()}


def test_lifecycle_mails_with_invites(store: Store, use_smtp: Mailbox) -> None:
    parties(store)
    start = next_slot(1, 10)
    booking = book(store, start)
    wiring.drain_outbox(store, Settings())
    bookings.confirm_booking(store, EXPERT, booking.id, now=NOW)
    wiring.drain_outbox(store, Settings())
    moved = bookings.reschedule_booking(store, EXPERT, booking.id, next_slot(2, 11), now=NOW)
    wiring.drain_outbox(store, Settings())
    bookings.cancel_booking(store, USER, booking.id, "ill", now=NOW)
    wiring.drain_outbox(store, Settings())

    mails = use_smtp.snapshot()
    summary = [(rcpt, msg["Subject"].split(":")[0]) for rcpt, msg in mails]
    assert summary == [
        ([EXPERT_EMAIL], "New booking"),
        ([USER_EMAIL], "Booking confirmed"),
        ([USER_EMAIL], "Booking rescheduled"),
        ([EXPERT_EMAIL], "Booking rescheduled"),
        ([USER_EMAIL], "Booking cancelled"),
        ([EXPERT_EMAIL], "Booking cancelled"),
    ]
    # The user reads times in their own zone (Europe/Berlin: 10:00 UTC is 11:00 in March).
    assert "11:00" in mails[1][1]["Subject"] and "Europe/Berlin" in mails[1][1]["Subject"]
    for _, msg in mails:
        types = {p.get_content_type() for p in msg.walk()}
        assert {"text/plain", "text/html"} <= types
    assert _invite(mails[0][1]) is None  # a pending booking gets no invite yet
    uid = f"{booking.id}@calbook"
    assert _vevent(_invite(mails[1][1])) == {"UID": uid, "SEQUENCE": "0", "METHOD": "REQUEST",
                                             "DTSTART": start.isoformat()}
    for i in (2, 3):
        assert _vevent(_invite(mails[i][1])) == {"UID": uid, "SEQUENCE": "1", "METHOD": "REQUEST",
                                                 "DTSTART": moved.start.isoformat()}
    for i in (4, 5):
        cancel = _vevent(_invite(mails[i][1]))
        assert (cancel["METHOD"], cancel["UID"], cancel["SEQUENCE"]) == ("CANCEL", uid, "2")


def test_redispatched_events_send_no_second_mail(store: Store, use_smtp: Mailbox) -> None:
    parties(store)
    book(store, next_slot(1, 10), confirm=True)
    wiring.drain_outbox(store, Settings())
    first = len(use_smtp.snapshot())
    assert first == 2  # expert: new booking; user: confirmation
    redispatch_everything(store)
    assert wiring.drain_outbox(store, Settings()).dispatched == 2
    assert len(use_smtp.snapshot()) == first
    with store.read() as conn:
        statuses = [r[0] for r in conn.execute(select(notification_log.c.status))]
    assert statuses == ["sent", "sent"]


def test_requests_decline_and_reminders_reach_the_right_party(store: Store, use_smtp: Mailbox) -> None:
    parties(store)
    request = booking_requests.create_request(store, USER, EXPERT, 60, "video_call", [next_slot(2, 10)], now=NOW)
    booking_requests.respond_to_request(store, EXPERT, request.id, False, message="busy", now=NOW)
    declined = book(store, next_slot(1, 14))
    bookings.decline_booking(store, EXPERT, declined.id, "no time", now=NOW)
    start = next_slot(1, 10)
    book(store, start, confirm=True)
    reminder_service.send_due_reminders(store, now=start - timedelta(minutes=45))
    wiring.drain_outbox(store, Settings())
    summary = [(rcpt[0], msg["Subject"]) for rcpt, msg in use_smtp.snapshot()]
    assert (EXPERT_EMAIL, "New booking request from Ulla User") in summary
    assert (USER_EMAIL, "Eddie Expert declined your booking request") in summary
    assert [s for r, s in summary if s.startswith("Booking declined")] and all(
        r == USER_EMAIL for r, s in summary if s.startswith("Booking declined"))
    reminders = sorted(r for r, s in summary if s.startswith("Reminder"))
    assert reminders == sorted([USER_EMAIL, EXPERT_EMAIL])


def test_party_without_address_is_skipped(store: Store, use_smtp: Mailbox) -> None:
    parties(store)
    users.update_profile(store, "user-2", display_name="No Mail", now=NOW)
    bookings.create_booking(store, "user-2", EXPERT, next_slot(1, 10), 60, "video_call", now=NOW)
    booking = bookings.list_bookings(store, "user-2", as_role="user")[0][0]
    bookings.confirm_booking(store, EXPERT, booking.id, now=NOW)
    assert wiring.drain_outbox(store, Settings()).dispatched == 2
    assert [rcpt for rcpt, _ in use_smtp.snapshot()] == [[EXPERT_EMAIL]]


def test_no_smtp_url_means_no_mail_and_no_error(store: Store) -> None:
    parties(store)
    book(store, next_slot(1, 10), confirm=True)
    assert wiring.drain_outbox(store, Settings()).dispatched == 2


def test_line_breaks_in_a_topic_are_flattened_in_the_subject(store: Store, use_smtp: Mailbox) -> None:
    parties(store)
    book(store, next_slot(1, 10), topic="Tax advice\r\nfor 2029\u2028and after")
    wiring.drain_outbox(store, Settings())
    [(rcpt, msg)] = use_smtp.snapshot()
    assert rcpt == [EXPERT_EMAIL]
    assert msg["Subject"].startswith("New booking: Tax advice for 2029 and after, ")
    assert "\n" not in str(msg["Subject"]) and "\r" not in str(msg["Subject"])


def test_a_mail_that_cannot_be_built_fails_for_that_recipient_only(store: Store, use_smtp: Mailbox) -> None:
    """A profile written before the API refused line breaks (or by another tool) cannot go
    into a header: that recipient's mail is given up as ``invalid``, the other party's goes out."""
    parties(store)
    with store.write() as conn:
        conn.execute(update(users_table).where(users_table.c.id == USER)
                     .values(email="ulla@example.org\r\nBcc: everyone@example.org"))
        conn.execute(update(users_table).where(users_table.c.id == EXPERT).values(display_name="Eddie\nExpert"))
    booking = book(store, next_slot(1, 10), confirm=True)
    bookings.cancel_booking(store, USER, booking.id, "ill", now=NOW)
    result = wiring.drain_outbox(store, Settings())
    assert (result.dispatched, result.failed) == (3, 0)
    assert outbox.pending_count(store) == 0
    sent = [(rcpt, msg["Subject"].split(":")[0], str(msg["To"])) for rcpt, msg in use_smtp.snapshot()]
    assert sent == [([EXPERT_EMAIL], "New booking", f"Eddie Expert <{EXPERT_EMAIL}>"),
                    ([EXPERT_EMAIL], "Booking cancelled", f"Eddie Expert <{EXPERT_EMAIL}>")]
    with store.read() as conn:
        logged = sorted((r.event_type, r.recipient, r.status) for r in conn.execute(select(notification_log)))
    assert logged == [("booking.cancelled", EXPERT, "sent"), ("booking.cancelled", USER, "invalid"),
                      ("booking.confirmed", USER, "invalid"), ("booking.created", EXPERT, "sent")]
    redispatch_everything(store)
    wiring.drain_outbox(store, Settings())
    assert len(use_smtp.snapshot()) == 2  # "invalid" is final: never retried, never sent twice
