"""The subscribable calendar feed on both databases (docs/api.md#calendar-feed), read by the ``icalendar``
library: the person's bookings as user and as expert, stable UIDs, SEQUENCE, cancellations, rotation, ETag."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from fastapi.testclient import TestClient
from icalendar import Calendar

from booking_engine.clock import utcnow
from booking_engine.services import calendar_feeds
from booking_engine.store.db import Store
from tests.support.api import EXPERT, USER, assert_problem, at, auth, booking_body, day_ahead
from tests.support.factories import publish


def feed_path(client: TestClient, user: str = USER) -> str:
    response = client.post("/v1/me/calendar-feed", headers=auth(user))
    assert response.status_code == 200, response.text
    url = response.json()["url"]
    assert url.startswith("http://127.0.0.1:8000/v1/calendar-feeds/") and url.endswith(".ics")
    return urlsplit(url).path


def events(body: bytes) -> dict[str, Any]:
    calendar = Calendar.from_ical(body)
    return {str(e["UID"]): e for e in calendar.walk("VEVENT")}


def test_the_feed_holds_my_bookings_as_user_and_as_expert(client: TestClient, store: Store, expert: Any) -> None:
    publish(store, USER, now=utcnow())  # USER is an expert too
    mine = client.post("/v1/bookings", json=booking_body(), headers=auth(USER)).json()
    moved = client.post("/v1/bookings", json=booking_body(day_ahead(2)), headers=auth(USER)).json()
    client.post(f"/v1/bookings/{moved['id']}/reschedule", json={"newStartTime": at(day_ahead(3), 12)},
                headers=auth(EXPERT))
    as_expert = client.post("/v1/bookings", json=booking_body(expertId=USER, topic="Mentoring"),
                            headers=auth("user-2")).json()
    client.post(f"/v1/bookings/{as_expert['id']}/cancel", json={"reason": "ill"}, headers=auth(USER))
    strangers = client.post("/v1/bookings", json=booking_body(day_ahead(4)), headers=auth("user-3")).json()

    path = feed_path(client)
    response = client.get(path)  # no Authorization: the token in the URL is the credential
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/calendar")
    got = events(response.content)
    assert set(got) == {f"{mine['id']}@calbook", f"{moved['id']}@calbook", f"{as_expert['id']}@calbook"}
    assert f"{strangers['id']}@calbook" not in got
    first = got[f"{mine['id']}@calbook"]
    assert (str(first["STATUS"]), int(first["SEQUENCE"]), str(first["SUMMARY"])) == ("TENTATIVE", 0, "Tax questions")
    assert first.decoded("DTSTART").isoformat().startswith(day_ahead().isoformat() + "T10:00:00")
    assert int(got[f"{moved['id']}@calbook"]["SEQUENCE"]) == 1
    assert got[f"{moved['id']}@calbook"].decoded("DTSTART").hour == 12
    cancelled = got[f"{as_expert['id']}@calbook"]
    assert (str(cancelled["STATUS"]), int(cancelled["SEQUENCE"])) == ("CANCELLED", 1)
    # The UID is the one of the single booking's file, so both land on the same event.
    single = Calendar.from_ical(client.get(f"/v1/bookings/{mine['id']}.ics", headers=auth(USER)).content)
    assert [str(e["UID"]) for e in single.walk("VEVENT")] == [f"{mine['id']}@calbook"]


def test_conditional_get_with_the_etag(client: TestClient, booking: dict[str, Any]) -> None:
    path = feed_path(client)
    first = client.get(path)
    tag = first.headers["ETag"]
    assert tag.startswith('"') and client.get(path).headers["ETag"] == tag  # unchanged, the same bytes
    unchanged = client.get(path, headers={"If-None-Match": tag})
    assert unchanged.status_code == 304 and unchanged.content == b"" and unchanged.headers["ETag"] == tag
    assert client.get(path, headers={"If-None-Match": f'"other", W/{tag}'}).status_code == 304
    client.post(f"/v1/bookings/{booking['id']}/confirm", headers=auth(EXPERT))
    changed = client.get(path, headers={"If-None-Match": tag})
    assert changed.status_code == 200 and changed.headers["ETag"] != tag
    assert str(events(changed.content)[f"{booking['id']}@calbook"]["STATUS"]) == "CONFIRMED"


def test_a_new_url_retires_the_old_one_and_delete_ends_the_feed(client: TestClient, booking: dict[str, Any]) -> None:
    old = feed_path(client)
    new = feed_path(client)
    assert old != new
    assert_problem(client.get(old), 404, "not_found")
    assert client.get(new).status_code == 200
    assert client.delete("/v1/me/calendar-feed", headers=auth(USER)).status_code == 204
    assert_problem(client.get(new), 404, "not_found")
    assert_problem(client.delete("/v1/me/calendar-feed", headers=auth(USER)), 404, "not_found")
    for guess in ("x", "A" * 43, "../" + "A" * 40):
        assert client.get(f"/v1/calendar-feeds/{guess}.ics").status_code == 404
    assert_problem(client.post("/v1/me/calendar-feed"), 401, "unauthenticated")


def test_the_feed_spans_recent_and_upcoming_bookings(client: TestClient, store: Store, booking: dict[str, Any]) -> None:
    token = urlsplit(feed_path(client)).path.rsplit("/", 1)[1].removesuffix(".ics")
    start = utcnow() + timedelta(days=1)
    assert [b.id for b in calendar_feeds.feed_bookings(store, token)[1]] == [booking["id"]]
    assert calendar_feeds.feed_bookings(store, token, now=start + timedelta(days=29))[1]
    assert not calendar_feeds.feed_bookings(store, token, now=start + timedelta(days=31))[1]
    assert not calendar_feeds.feed_bookings(store, token, now=start - timedelta(days=367))[1]
