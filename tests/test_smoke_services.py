from datetime import date, timedelta

from booking_engine.services import availability as av
from booking_engine.services import bookings
from tests.support.factories import NOW, publish


def test_publish_book_confirm_cancel(store):
    publish(store)
    slots = av.get_slots(store, "expert-1", date(2030, 3, 5), 60, now=NOW)
    assert len(slots.slots) == 15
    b = bookings.create_booking(store, "user-1", "expert-1", slots.slots[0].start, 60, "video_call", now=NOW)
    assert b.status == "pending" and b.price_cents == 6000
    b = bookings.confirm_booking(store, "expert-1", b.id, now=NOW)
    assert b.status == "confirmed"
    slots2 = av.get_slots(store, "expert-1", date(2030, 3, 5), 60, now=NOW)
    assert slots2.slots[0].status == "booked"
    b = bookings.cancel_booking(store, "user-1", b.id, "sick", now=b.start - timedelta(hours=3))
    assert b.refund_cents == 3000
