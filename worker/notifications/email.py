"""Booking e-mails over SMTP: plain text and HTML, with an iCalendar invite where it matters.

Who hears what (docs/worker.md#e-mail): the expert of new bookings and requests (and of withdrawn
requests and calendar conflicts); the user of confirmation, decline, acceptance, rejection
and expiry; both parties of cancellation, reschedule and reminders. Addresses come from
the ``users`` table at send time; a party without an address is skipped.

Invites carry the booking's current state from the database (its ``sequence`` is not in
the event payload): ``REQUEST`` on confirmation and reschedule, ``CANCEL`` on cancellation.

Idempotency: each (event, recipient) is sent at most once per successful log write; a
worker killed between the SMTP ``250`` and the log write can repeat that one e-mail
(at-least-once). A permanent refusal (5xx) is logged as ``refused`` and not retried;
connection trouble and 4xx raise, and the outbox retries this handler alone with backoff
(docs/worker.md#outbox).

One recipient's bad data never stops another's mail: header values are flattened to one line
(a topic typed into a textarea holds line breaks), and a message that still cannot be
composed, built or encoded for a recipient is a permanent failure for that recipient only,
logged as ``invalid`` and never retried.
"""

from __future__ import annotations

import html
import logging
import smtplib
import ssl
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from email import errors as email_errors
from email.message import EmailMessage
from email.utils import formataddr, make_msgid
from typing import Any
from urllib.parse import unquote, urlsplit

from booking_engine.clock import utcnow
from booking_engine.errors import ValidationError
from booking_engine.model import Booking, BookingStatus
from booking_engine.services.users import is_email_address
from booking_engine.store.db import Store
from booking_engine.store.repositories import bookings as booking_rows
from booking_engine.store.repositories import users as user_rows
from booking_engine.timeutil import zone
from config.settings import Settings
from worker.metrics import count_email
from worker.notifications import ical
from worker.notifications.log import already_logged, record
from worker.outbox import OutboxEvent

log = logging.getLogger(__name__)

EMAIL_EVENTS = (
    "booking.created", "booking.confirmed", "booking.cancelled", "booking.rescheduled", "booking.reminder",
    "booking.conflict", "booking_request.created", "booking_request.accepted", "booking_request.rejected",
    "booking_request.expired", "booking_request.withdrawn",
)


@dataclass(frozen=True, slots=True)
class Recipient:
    user_id: str
    role: str  # "user" | "expert"
    email: str
    name: str | None
    timezone: str


@dataclass(frozen=True, slots=True)
class Mail:
    recipient: Recipient
    subject: str
    text: str
    html: str
    invite: bytes | None = None
    method: str | None = None


class PermanentSmtpError(Exception):
    """The server refused the message for good (5xx); retrying would not help."""


@dataclass(frozen=True, slots=True)
class Unbuildable:
    """A recipient whose e-mail could not be composed: a permanent failure for them alone."""

    recipient: Recipient
    reason: str


#: What composing or building a message raises on bad data (a header with a line break, an
#: address the ``email`` package refuses, text that does not encode, a zone that does not exist).
BUILD_ERRORS: tuple[type[Exception], ...] = (ValueError, TypeError, LookupError, email_errors.MessageError)


def one_line(value: str) -> str:
    """A header value on one line: control characters and line separators become spaces."""
    flat = "".join(" " if unicodedata.category(c) in ("Cc", "Zl", "Zp") else c for c in value)
    return " ".join(flat.split())


# --- who and what ----------------------------------------------------------------------


def audience(event: OutboxEvent, booking: Booking | None) -> tuple[str, ...]:
    kind, payload = event.event_type, event.payload
    if kind == "booking.created":
        # An accepted request: the expert just said yes; telling them again is noise.
        return () if booking is not None and booking.request_id else ("expert",)
    if kind == "booking.cancelled":
        return ("user",) if payload.get("declined") else ("user", "expert")
    if kind == "booking.reminder":
        return tuple(p for p in payload.get("parties", ("user", "expert")) if p in ("user", "expert"))
    return {
        "booking.confirmed": ("user",),
        "booking.rescheduled": ("user", "expert"),
        "booking.conflict": ("expert",),
        "booking_request.created": ("expert",),
        "booking_request.withdrawn": ("expert",),
        "booking_request.accepted": ("user",),
        "booking_request.rejected": ("user",),
        "booking_request.expired": ("user",),
    }.get(kind, ())


def _party_ids(event: OutboxEvent) -> dict[str, str]:
    subject = event.payload.get("booking") or event.payload.get("request") or {}
    return {"user": subject.get("userId", ""), "expert": subject.get("expertId", "")}


def _recipients(store: Store, event: OutboxEvent, roles: tuple[str, ...]) -> list[Recipient]:
    ids = _party_ids(event)
    found: list[Recipient] = []
    with store.read() as conn:
        for role in roles:
            row = user_rows.get_user(conn, ids[role]) if ids[role] else None
            if row is None or not row["email"]:
                log.info("no e-mail address, skipped", extra={
                    "event_id": event.event_id, "user_id": ids[role], "role": role})
                continue
            found.append(Recipient(row["id"], role, row["email"], row["display_name"], row["timezone"] or "UTC"))
    return found


def _names(store: Store, event: OutboxEvent) -> dict[str, str]:
    ids = _party_ids(event)
    names: dict[str, str] = {}
    with store.read() as conn:
        for role, user_id in ids.items():
            row = user_rows.get_user(conn, user_id) if user_id else None
            names[role] = (row["display_name"] if row and row["display_name"] else None) or (
                "your client" if role == "user" else "your expert")
    return names


def _when(start: datetime, end: datetime, tz_name: str) -> str:
    try:
        tz = zone(tz_name)
    except ValidationError:  # a profile saved before zones were checked this strictly: say it in UTC
        tz, tz_name = zone("UTC"), "UTC"
    s, e = start.astimezone(tz), end.astimezone(tz)
    return f"{s:%a %d %b %Y, %H:%M}–{e:%H:%M} ({tz_name})"


def _parse_instant(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _compose(event: OutboxEvent, r: Recipient, booking: Booking | None, names: dict[str, str]) -> tuple[str, str]:
    """(subject, body text) for one recipient."""
    other = names["expert"] if r.role == "user" else names["user"]
    p = event.payload
    if event.event_type.startswith("booking_request."):
        req = p.get("request", {})
        slots = [
            _when(_parse_instant(s["startTime"]), _parse_instant(s["endTime"]), r.timezone)
            for s in req.get("proposedSlots", [])
        ]
        listing = "\n".join(f"  - {s}" for s in slots)
        kind = event.event_type.split(".", 1)[1]
        subjects = {
            "created": (f"New booking request from {other}", f"{other} proposes:\n{listing}"),
            "withdrawn": (f"Booking request withdrawn by {other}", f"{other} withdrew the request for:\n{listing}"),
            "accepted": (f"{other} accepted your booking request", "Your booking is confirmed; an invitation follows."),
            "rejected": (f"{other} declined your booking request", req.get("responseMessage") or "No reason given."),
            "expired": ("Your booking request expired", f"{other} did not answer in time. Proposed:\n{listing}"),
        }
        return subjects.get(kind, (f"Booking request {kind}", listing))
    b = p.get("booking", {})
    start = booking.start if booking else _parse_instant(b["startTime"])
    end = booking.end if booking else _parse_instant(b["endTime"])
    when = _when(start, end, r.timezone)
    title = b.get("topic") or "Consultation"
    kind = event.event_type.split(".", 1)[1]
    if kind == "created":
        pending = b.get("status") == "pending"
        return (f"New booking: {title}, {when}",
                f"{other} booked {title} for {when}." + (" Please confirm or decline it." if pending else ""))
    if kind == "confirmed":
        return f"Booking confirmed: {title}, {when}", f"Your booking with {other} is confirmed for {when}."
    if kind == "cancelled" and p.get("declined"):
        reason = b.get("cancellationReason") or "no reason given"
        return f"Booking declined: {title}, {when}", f"{other} declined the booking ({reason})."
    if kind == "cancelled":
        reason = b.get("cancellationReason") or "no reason given"
        return f"Booking cancelled: {title}, {when}", f"The booking for {when} was cancelled ({reason})."
    if kind == "rescheduled":
        old = _when(_parse_instant(p["previousStartTime"]), _parse_instant(p["previousStartTime"]) + (end - start),
                    r.timezone) if p.get("previousStartTime") else "its previous time"
        return f"Booking rescheduled: {title}, now {when}", f"The booking moved from {old} to {when}."
    if kind == "reminder":
        return f"Reminder: {title} starts at {when}", f"Your booking with {other} starts soon: {when}."
    if kind == "conflict":
        return (f"Calendar conflict: {title}, {when}",
                f"The booking for {when} now overlaps an event in your calendar. It has not been cancelled.")
    return f"Booking {kind}: {title}, {when}", f"Booking {kind}: {when}."


def _invite_method(event: OutboxEvent, booking: Booking | None) -> str | None:
    if booking is None:
        return None
    if event.event_type == "booking.confirmed":
        return "REQUEST"
    if event.event_type == "booking.created" and booking.status == BookingStatus.CONFIRMED:
        return None  # the booking.confirmed event that follows carries the invite
    if event.event_type == "booking.rescheduled" and booking.status in (BookingStatus.CONFIRMED, BookingStatus.PENDING):
        return "REQUEST"
    if event.event_type == "booking.cancelled" and not event.payload.get("declined"):
        return "CANCEL"
    return None


def plan(store: Store, event: OutboxEvent, *, mail_from: str) -> list[Mail | Unbuildable]:
    """The e-mails an event should produce, built from the current database state."""
    booking: Booking | None = None
    if event.event_type.startswith("booking."):
        with store.read() as conn:
            booking = booking_rows.get_booking(conn, event.aggregate_id)
    roles = audience(event, booking)
    if not roles:
        return []
    recipients = _recipients(store, event, roles)
    if not recipients:
        return []
    names = _names(store, event)
    method = _invite_method(event, booking)
    invite: bytes | None = None
    if method and booking is not None:
        with store.read() as conn:
            users = {r: user_rows.get_user(conn, uid) for r, uid in _party_ids(event).items()}
        # Only addresses a header can carry become attendees (a legacy profile may hold others).
        attendees = [(u["email"], one_line(u["display_name"] or "") or None) for u in users.values()
                     if u is not None and u["email"] and is_email_address(u["email"])]
        title = one_line(booking.topic or "") or "Consultation"
        try:
            invite = ical.booking_invite(
                booking, method, organizer=mail_from, attendees=attendees,
                summary=one_line(f"{title}: {names['user']} with {names['expert']}"),
                description=f"calbook booking {booking.id} ({booking.type})", now=utcnow(),
            )
        except BUILD_ERRORS as exc:  # the mails still say what happened, without the invite
            log.warning("invite could not be built, mails go without it",
                        extra={"event_id": event.event_id, "booking_id": booking.id, "error": type(exc).__name__})
    mails: list[Mail | Unbuildable] = []
    for r in recipients:
        try:
            subject, text = _compose(event, r, booking, names)
        except BUILD_ERRORS as exc:
            mails.append(Unbuildable(r, f"{type(exc).__name__}: {exc}"))
            continue
        greeting = f"Hello {r.name}," if r.name else "Hello,"
        body = f"{greeting}\n\n{text}\n\n-- calbook\n"
        html_body = (
            f"<html><body><p>{html.escape(greeting)}</p><p>{html.escape(text).replace(chr(10), '<br>')}</p>"
            "<p>-- calbook</p></body></html>"
        )
        mails.append(Mail(r, subject, body, html_body, invite, method if invite else None))
    return mails


# --- SMTP ------------------------------------------------------------------------------


def build_message(mail: Mail, sender: str, event: OutboxEvent) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = formataddr((one_line(mail.recipient.name or ""), mail.recipient.email))
    msg["Subject"] = one_line(mail.subject)
    msg["Message-ID"] = make_msgid(idstring=f"{event.event_id}.{mail.recipient.user_id}", domain="calbook")
    msg["X-Calbook-Event-Id"] = event.event_id
    msg.set_content(mail.text)
    msg.add_alternative(mail.html, subtype="html")
    if mail.invite is not None and mail.method is not None:
        msg.add_attachment(
            mail.invite, maintype="text", subtype="calendar", filename="invite.ics",
            params={"method": mail.method, "charset": "utf-8"},
        )
    return msg


@contextmanager
def smtp_connection(url: str, timeout: float) -> Iterator[smtplib.SMTP]:
    """``smtp://[user:pass@]host[:port]``, ``smtp+starttls://...`` or ``smtps://...``."""
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    client: smtplib.SMTP
    if parts.scheme == "smtps":
        client = smtplib.SMTP_SSL(host, parts.port or 465, timeout=timeout, context=ssl.create_default_context())
    else:
        client = smtplib.SMTP(host, parts.port or 25, timeout=timeout)
        if parts.scheme == "smtp+starttls":
            client.starttls(context=ssl.create_default_context())
    try:
        if parts.username:
            client.login(unquote(parts.username), unquote(parts.password or ""))
        yield client
    finally:
        try:
            client.quit()
        except smtplib.SMTPException:
            client.close()


def _send(client: smtplib.SMTP, msg: EmailMessage) -> None:
    try:
        client.send_message(msg)
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _ in exc.recipients.values()]
        if all(code >= 500 for code in codes):
            raise PermanentSmtpError(f"recipient refused: {codes}") from exc
        raise
    except (smtplib.SMTPDataError, smtplib.SMTPSenderRefused) as exc:
        if exc.smtp_code >= 500:
            raise PermanentSmtpError(f"message refused: {exc.smtp_code}") from exc
        raise
    except smtplib.SMTPNotSupportedError as exc:  # e.g. a non-ASCII address, no SMTPUTF8 on the server
        raise PermanentSmtpError(f"message not supported by the server: {exc}") from exc
    except (UnicodeError, email_errors.MessageError) as exc:
        raise PermanentSmtpError(f"message could not be encoded: {type(exc).__name__}") from exc


def _log_fields(event: OutboxEvent, recipient: Recipient) -> dict[str, Any]:
    return {"channel": "email", "event_id": event.event_id, "event_type": event.event_type,
            "recipient": recipient.user_id}


def _invalid(store: Store, key: str, fields: dict[str, Any], reason: str) -> None:
    record(store, key, status="invalid", detail=reason[:1000], **fields)
    log.warning("e-mail could not be built, not retried", extra={**fields, "error": reason[:300]})


def send_event_emails(store: Store, event: OutboxEvent, *, settings: Settings) -> None:
    """Outbox handler: the e-mails of one event, each at most once per idempotency key."""
    if not settings.smtp_url:
        log.debug("SMTP not configured, e-mail skipped", extra={"event_id": event.event_id})
        return
    todo: list[tuple[str, Mail, EmailMessage]] = []
    for mail in plan(store, event, mail_from=settings.mail_from):
        key = f"email:{event.event_id}:{mail.recipient.user_id}"
        if already_logged(store, key):
            continue
        fields = _log_fields(event, mail.recipient)
        if isinstance(mail, Unbuildable):
            _invalid(store, key, fields, mail.reason)
            continue
        try:
            todo.append((key, mail, build_message(mail, settings.mail_from, event)))
        except BUILD_ERRORS as exc:
            _invalid(store, key, fields, f"{type(exc).__name__}: {exc}")
    if not todo:
        return
    with smtp_connection(settings.smtp_url, settings.worker.smtp_timeout_seconds) as client:
        for key, mail, message in todo:
            log_fields = _log_fields(event, mail.recipient)
            try:
                _send(client, message)
            except PermanentSmtpError as exc:
                record(store, key, status="refused", detail=str(exc), **log_fields)
                count_email("refused")
                log.warning("e-mail refused permanently", extra={**log_fields, "error": str(exc)})
                continue
            record(store, key, status="sent", **log_fields)
            count_email("sent")
            log.info("e-mail sent", extra={**log_fields, "booking_id": event.aggregate_id})
