"""The payment hold over HTTP on both databases (docs/lifecycle.md#payment-hold): the hold, the payment
call by a key of the right scope, the wrong scope and a user token, confirmation, expiry, refunds due."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from booking_engine.clock import utcnow
from booking_engine.errors import InvalidState
from booking_engine.services import bookings, service_keys
from booking_engine.store.db import Store
from booking_engine.store.tables import outbox
from tests.support.api import EXPERT, USER, assert_problem, auth, booking_body
from tests.support.factories import publish


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
def payments_key(store: Store) -> str:
    return service_keys.create_key(store, "payments", ["payments"])[1]


def pay(client: TestClient, booking_id: str, key: str, payment_id: str = "pi_1", amount: int = 6000,
        currency: str = "USD") -> Any:
    return client.post(f"/v1/bookings/{booking_id}/payment", headers=bearer(key),
                       json={"paymentId": payment_id, "amountCents": amount, "currency": currency})


def book(client: TestClient, **overrides: Any) -> dict[str, Any]:
    response = client.post("/v1/bookings", json=booking_body(**overrides), headers=auth(USER))
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def events(store: Store, booking_id: str) -> list[str]:
    with store.read() as conn:
        return [r[0] for r in conn.execute(select(outbox.c.event_type).where(outbox.c.aggregate_id == booking_id)
                                           .order_by(outbox.c.id))]


def test_without_payment_required_bookings_work_as_before(client: TestClient, booking: dict[str, Any]) -> None:
    assert booking["paymentStatus"] == "not_required" and booking["paymentDueAt"] is None
    confirmed = client.post(f"/v1/bookings/{booking['id']}/confirm", headers=auth(EXPERT))
    assert confirmed.status_code == 200 and confirmed.json()["status"] == "confirmed"


def test_a_held_booking_holds_its_slot_until_paid_then_the_expert_confirms(
    client: TestClient, store: Store, payments_key: str
) -> None:
    publish(store, EXPERT, now=utcnow(), paymentRequired=True, paymentHoldMinutes=20)
    before = utcnow()
    held = book(client)
    assert (held["status"], held["paymentStatus"], held["paymentId"]) == ("pending", "awaiting_payment", None)
    due = parse_instant(held["paymentDueAt"])
    assert before + timedelta(minutes=20) <= due <= utcnow() + timedelta(minutes=20)
    # The slot is held: nobody else gets it, and it shows booked.
    other = client.post("/v1/bookings", json=booking_body(), headers=auth("user-2"))
    assert_problem(other, 409, "slot_unavailable")
    assert_problem(client.post(f"/v1/bookings/{held['id']}/confirm", headers=auth(EXPERT)), 409, "payment_required")

    paid = pay(client, held["id"], payments_key)
    assert paid.status_code == 200, paid.text
    body = paid.json()
    assert (body["status"], body["paymentStatus"], body["paymentId"]) == ("pending", "paid", "pi_1")
    assert body["paidAt"] is not None
    again = pay(client, held["id"], payments_key)
    assert again.status_code == 200 and again.json() == body  # idempotent: nothing written
    assert_problem(pay(client, held["id"], payments_key, payment_id="pi_2"), 409, "invalid_state")
    assert events(store, held["id"]) == ["booking.created", "booking.paid"]
    confirmed = client.post(f"/v1/bookings/{held['id']}/confirm", headers=auth(EXPERT))
    assert confirmed.status_code == 200 and confirmed.json()["status"] == "confirmed"


def test_auto_confirm_confirms_on_payment_and_a_short_payment_is_refused(
    client: TestClient, store: Store, payments_key: str
) -> None:
    publish(store, EXPERT, now=utcnow(), paymentRequired=True, autoConfirm=True)
    held = book(client)
    assert held["status"] == "pending" and held["paymentStatus"] == "awaiting_payment"
    body = assert_problem(pay(client, held["id"], payments_key, amount=5999), 422, "payment_amount_mismatch")
    assert "6000" in body["detail"]
    assert_problem(pay(client, held["id"], payments_key, currency="EUR"), 422, "payment_amount_mismatch")
    paid = pay(client, held["id"], payments_key, amount=6000)
    assert paid.json()["status"] == "confirmed" and paid.json()["paymentStatus"] == "paid"
    assert events(store, held["id"]) == ["booking.created", "booking.paid", "booking.confirmed"]


def test_only_a_key_with_the_payments_scope_records_a_payment(
    client: TestClient, store: Store, payments_key: str
) -> None:
    publish(store, EXPERT, now=utcnow(), paymentRequired=True)
    held = book(client)
    reader = service_keys.create_key(store, "calls", ["bookings:read"])[1]
    body = assert_problem(pay(client, held["id"], reader), 403, "forbidden")
    assert "payments" in body["detail"]
    for user in (USER, EXPERT):
        response = client.post(f"/v1/bookings/{held['id']}/payment", headers=auth(user),
                               json={"paymentId": "pi_1", "amountCents": 6000, "currency": "USD"})
        assert_problem(response, 403, "forbidden")
    assert_problem(pay(client, "no-such-booking", payments_key), 404, "not_found")
    for bad in ({"paymentId": "", "amountCents": 6000, "currency": "USD"},
                {"paymentId": "pi", "amountCents": -1, "currency": "USD"},
                {"paymentId": "pi", "amountCents": "6000", "currency": "USD"},
                {"paymentId": "pi", "amountCents": 6000, "currency": "usd"}):
        response = client.post(f"/v1/bookings/{held['id']}/payment", headers=bearer(payments_key), json=bad)
        assert_problem(response, 422, "validation_error")
    assert client.get(f"/v1/bookings/{held['id']}", headers=auth(USER)).json()["paymentStatus"] == "awaiting_payment"
    # A booking that was never on hold takes no payment.
    publish(store, EXPERT, now=utcnow())
    plain = book(client, startTime=booking_body(hour=13)["startTime"])
    assert_problem(pay(client, plain["id"], payments_key), 409, "invalid_state")


def test_a_free_session_needs_no_payment(client: TestClient, store: Store) -> None:
    publish(store, EXPERT, now=utcnow(), paymentRequired=True, hourlyRateCents=0)
    assert book(client)["paymentStatus"] == "not_required"


def test_the_hold_ends_at_its_due_time_and_the_slot_is_free_again(
    client: TestClient, store: Store, payments_key: str
) -> None:
    publish(store, EXPERT, now=utcnow(), paymentRequired=True)
    held = book(client)
    due = parse_instant(held["paymentDueAt"])
    key = service_keys.authenticate(store, payments_key)
    assert bookings.expire_payment_holds(store, now=due - timedelta(microseconds=1)) == 0
    with pytest.raises(InvalidState):
        bookings.record_payment(store, key, held["id"], "pi_late", 6000, "USD", now=due)
    assert bookings.expire_payment_holds(store, now=due) == 1
    assert bookings.expire_payment_holds(store, now=due) == 0  # a second sweep finds nothing
    gone = client.get(f"/v1/bookings/{held['id']}", headers=auth(USER)).json()
    assert (gone["status"], gone["cancelledBy"], gone["cancellationReason"]) == (
        "cancelled", "system", "payment_not_received")
    assert gone["paymentStatus"] == "unpaid" and gone["refundCents"] == 0
    assert events(store, held["id"]) == ["booking.created", "booking.cancelled", "booking.payment_expired"]
    assert_problem(pay(client, held["id"], payments_key), 409, "invalid_state")
    assert book(client)["paymentStatus"] == "awaiting_payment"  # the same slot, free again


def test_a_paid_booking_cancelled_makes_its_refund_due_once(
    client: TestClient, store: Store, payments_key: str
) -> None:
    publish(store, EXPERT, now=utcnow(), paymentRequired=True, autoConfirm=True)
    held = book(client)
    pay(client, held["id"], payments_key, payment_id="pi_9")
    cancelled = client.post(f"/v1/bookings/{held['id']}/cancel", json={"reason": "sick"}, headers=auth(EXPERT))
    assert cancelled.status_code == 200 and cancelled.json()["refundCents"] == 6000
    assert_problem(client.post(f"/v1/bookings/{held['id']}/cancel", json={"reason": "again"}, headers=auth(USER)),
                   409, "invalid_state")
    with store.read() as conn:
        rows = conn.execute(select(outbox.c.payload).where(outbox.c.event_type == "booking.refund_due")).all()
    assert len(rows) == 1
    payload = rows[0][0]
    assert (payload["paymentId"], payload["refundCents"], payload["currency"]) == ("pi_9", 6000, "USD")
    assert payload["booking"]["id"] == held["id"]


def test_the_payment_settings_are_in_the_settings_document_and_its_lock(client: TestClient, store: Store) -> None:
    from tests.support.factories import settings_body

    first = client.put(f"/v1/experts/{EXPERT}/availability", headers={**auth(EXPERT), "If-Match": '"0"'},
                       json=settings_body(paymentRequired=True, paymentHoldMinutes=30))
    assert first.status_code == 200, first.text
    assert (first.json()["paymentRequired"], first.json()["paymentHoldMinutes"]) == (True, 30)
    read = client.get(f"/v1/experts/{EXPERT}/availability", headers=auth(USER))
    assert read.json()["paymentRequired"] is True and read.headers["ETag"] == '"1"'
    stale = client.put(f"/v1/experts/{EXPERT}/availability", headers={**auth(EXPERT), "If-Match": '"0"'},
                       json=settings_body(paymentRequired=False))
    assert_problem(stale, 412, "precondition_failed")
    assert_problem(client.put(f"/v1/experts/{EXPERT}/availability", headers={**auth(EXPERT), "If-Match": '"1"'},
                              json=settings_body(paymentHoldMinutes=2)), 422, "validation_error")
    assert client.get(f"/v1/experts/{EXPERT}/availability", headers=auth(USER)).json()["paymentHoldMinutes"] == 30


def parse_instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_a_booking_from_an_accepted_request_waits_for_payment_then_confirms(
    client: TestClient, store: Store, payments_key: str
) -> None:
    from tests.support.api import at, day_ahead

    publish(store, EXPERT, now=utcnow(), paymentRequired=True)
    request = client.post("/v1/booking-requests", headers=auth(USER), json={
        "expertId": EXPERT, "requestedDurationMinutes": 60, "type": "video_call",
        "proposedSlots": [{"startTime": at(day_ahead(2), 10)}]}).json()
    accepted = client.post(f"/v1/booking-requests/{request['id']}/respond", headers=auth(EXPERT),
                           json={"accept": True, "slotIndex": 0})
    assert accepted.status_code == 200, accepted.text
    booking_id = accepted.json()["bookingId"]
    held = client.get(f"/v1/bookings/{booking_id}", headers=auth(USER)).json()
    assert (held["status"], held["paymentStatus"]) == ("pending", "awaiting_payment")
    paid = pay(client, booking_id, payments_key)
    assert (paid.json()["status"], paid.json()["paymentStatus"]) == ("confirmed", "paid")  # the expert agreed already
