"""The pages' sign-in, session cookie and CSRF (api/web/session.py), over HTTP on both databases."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import time_machine
from fastapi.testclient import TestClient

from api.web.session import SESSION_COOKIE
from booking_engine.model import AvailabilitySettings
from tests.support.api import EXPERT, USER, booking_body, day_ahead, token


def signed_in(client: TestClient, user: str = USER) -> None:
    answer = client.get(f"/login?token={token(user, ttl=300)}", follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/experts", answer.text
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie


def test_pages_need_a_session_and_a_link_gives_one(client: TestClient) -> None:
    answer = client.get("/bookings", follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"].startswith("/login?next=%2Fbookings")
    signed_in(client)
    page = client.get("/bookings")
    assert page.status_code == 200 and "Signed in as" in page.text and USER in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]


def test_a_long_lived_token_forged_cookie_and_dev_login_are_refused(client: TestClient) -> None:
    long_lived = client.get(f"/login?token={token(USER, ttl=24 * 3600)}", follow_redirects=False)
    assert long_lived.status_code == 401 and "lives too long" in long_lived.text
    assert SESSION_COOKIE not in long_lived.headers.get("set-cookie", "")
    assert client.get("/login?token=garbage").status_code == 401
    client.cookies.set(SESSION_COOKIE, "eyJzdWIiOiJ1c2VyLTEiLCJleHAiOjk5OTk5OTk5OTksImNzcmYiOiJ4In0.forged")
    assert client.get("/bookings", follow_redirects=False).status_code == 303
    client.cookies.clear()
    assert client.post("/login/dev", content="user=anyone").status_code == 404  # not enabled
    assert client.get("/login?next=//evil.example").status_code == 200


def test_a_form_without_the_csrf_token_does_nothing(client: TestClient) -> None:
    signed_in(client, EXPERT)
    page = client.get("/schedule")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf
    day = day_ahead(30)
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    refused = client.post("/schedule/exceptions", content=f"date={day}&type=unavailable", headers=form)
    assert refused.status_code == 403 and "expired" in refused.text
    assert f'data-exception="{day}"' not in client.get("/schedule").text
    done = client.post("/schedule/exceptions", content=f"date={day}&type=unavailable&csrf={csrf.group(1)}",
                       headers=form, follow_redirects=False)
    assert done.status_code == 303
    assert f'data-exception="{day}"' in client.get("/schedule").text
    out = client.post("/logout", content=f"csrf={csrf.group(1)}", headers=form, follow_redirects=False)
    assert out.status_code == 303 and 'calbook_session=""' in out.headers["set-cookie"]


def test_the_reschedule_picker_shows_the_bookings_own_time_as_free(client: TestClient, booking: dict) -> None:
    """``exclude_booking`` on get_slots: the slot a booking holds is free for moving that booking only."""
    day, start = booking["startTime"][:10], booking["startTime"]
    signed_in(client)
    client.cookies.set("calbook_tz", "UTC")
    plain = client.get(f"/experts/{EXPERT}/{day}?duration=60").text
    assert re.search(rf'<span class="slot booked" data-start="{start}"', plain)
    moving = client.get(f"/experts/{EXPERT}/{day}?reschedule={booking['id']}").text
    assert re.search(rf'<button type="submit" class="slot available" data-start="{start}"', moving)
    client.cookies.clear()
    signed_in(client, "stranger-1")
    assert client.get(f"/experts/{EXPERT}/{day}?reschedule={booking['id']}").status_code == 404


def test_the_month_and_day_pages_revalidate_to_304_until_something_changes(
    client: TestClient, expert: AvailabilitySettings
) -> None:
    """docs/web.md#caching: the browser keeps its own copy of the month and the day and asks again."""
    signed_in(client)
    day = day_ahead()
    pages = (f"/experts/{EXPERT}", f"/experts/{EXPERT}/{day}?duration=60")
    with time_machine.travel(datetime.now(UTC), tick=False):
        first = {url: client.get(url) for url in pages}
        for url, page in first.items():
            assert page.status_code == 200 and page.headers["cache-control"] == "private, no-cache"
            again = client.get(url, headers={"If-None-Match": page.headers["etag"]})
            assert again.status_code == 304 and again.content == b""
        assert client.get("/bookings").headers["cache-control"] == "no-store"  # the viewer's own data is never kept
        booked = client.post("/v1/bookings", json=booking_body(), headers={"Authorization": f"Bearer {token(USER)}"})
        assert booked.status_code == 201, booked.text
        for url, page in first.items():
            changed = client.get(url, headers={"If-None-Match": page.headers["etag"]})
            assert changed.status_code == 200 and changed.headers["etag"] != page.headers["etag"]
    client.cookies.clear()
    signed_in(client, "stranger-2")  # another viewer (another session, its own CSRF token) never gets a 304
    for url, page in first.items():
        assert client.get(url, headers={"If-None-Match": page.headers["etag"]}).status_code == 200


FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def hidden(page: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert found, f"no {name} field on the page"
    return found.group(1)


def status_of(client: TestClient, url: str, user: str = USER) -> str:
    return str(client.get(url, headers={"Authorization": f"Bearer {token(user)}"}).json()["status"])


def test_a_user_withdraws_their_own_request_from_the_pages(client: TestClient, expert: AvailabilitySettings) -> None:
    """``booking_requests.withdraw_request`` behind a confirmation step, the CSRF token, the version shown,
    and the parties: a stranger gets 404 (the request is not theirs to know of), the expert 403."""
    body = {"expertId": EXPERT, "requestedDurationMinutes": 60, "type": "audio_call",
            "proposedSlots": [{"startTime": f"{day_ahead(4)}T10:00:00Z"}]}
    made = client.post("/v1/booking-requests", json=body, headers={"Authorization": f"Bearer {token(USER)}"})
    assert made.status_code == 201, made.text
    request_id, api_url = made.json()["id"], f"/v1/booking-requests/{made.json()['id']}"
    page_url = f"/bookings/requests/{request_id}/withdraw"

    signed_in(client)
    assert f'href="{page_url}"' in client.get("/bookings").text
    confirm = client.get(page_url)
    assert confirm.status_code == 200 and 'id="confirm-withdraw"' in confirm.text
    csrf, version = hidden(confirm.text, "csrf"), hidden(confirm.text, "version")
    refused = client.post(page_url, content=f"version={version}", headers=FORM)
    assert refused.status_code == 403 and "expired" in refused.text
    stale = client.post(page_url, content=f"csrf={csrf}&version={int(version) - 1}", headers=FORM)
    assert stale.status_code == 409 and "changed since this page was shown" in stale.text
    assert status_of(client, api_url) == "pending"

    for other, code in (("stranger-3", 404), (EXPERT, 403)):
        client.cookies.clear()
        signed_in(client, other)
        own_csrf = hidden(client.get("/bookings").text, "csrf")
        seen = client.get(page_url)
        assert seen.status_code == (200 if other == EXPERT else 404) and 'id="confirm-withdraw"' not in seen.text
        answer = client.post(page_url, content=f"csrf={own_csrf}&version={version}", headers=FORM)
        assert answer.status_code == code and 'role="alert"' in answer.text and "{" not in answer.text
        assert status_of(client, api_url) == "pending"

    client.cookies.clear()
    signed_in(client)
    csrf = hidden(client.get(page_url).text, "csrf")
    done = client.post(page_url, content=f"csrf={csrf}&version={version}", headers=FORM, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/bookings?done=withdrawn"
    assert status_of(client, api_url) == "withdrawn"
    listing = client.get("/bookings?done=withdrawn").text
    assert "The request was withdrawn." in listing and f'href="{page_url}"' not in listing
    again = client.post(page_url, content=f"csrf={csrf}&version={int(version) + 1}", headers=FORM)
    assert again.status_code == 409 and "cannot withdraw a withdrawn request" in again.text


def test_a_user_cancels_a_confirmed_booking_from_the_pages_under_the_policy(
    client: TestClient, expert: AvailabilitySettings
) -> None:
    """The cancel page shows the refund and the policy; the cancel checks the CSRF token, the version
    shown and the parties (a stranger gets 404, like the API)."""
    bearer = {"Authorization": f"Bearer {token(USER)}"}
    made = client.post("/v1/bookings", json=booking_body(day_ahead(3)), headers=bearer)
    assert made.status_code == 201, made.text
    booking_id = made.json()["id"]
    page_url, api_url = f"/bookings/{booking_id}/cancel", f"/v1/bookings/{booking_id}"

    signed_in(client)
    confirm = client.get(page_url)
    pending_version = hidden(confirm.text, "version")
    confirmed = client.post(f"{api_url}/confirm", headers={"Authorization": f"Bearer {token(EXPERT)}"})
    assert confirmed.status_code == 200, confirmed.text
    assert f'href="{page_url}"' in client.get("/bookings").text
    confirm = client.get(page_url)
    assert "you get back <strong>$60.00</strong> of $60.00" in confirm.text
    assert "Free cancellation until 24 hours before the start." in confirm.text and "50% refund" in confirm.text
    csrf, version = hidden(confirm.text, "csrf"), hidden(confirm.text, "version")
    assert int(version) > int(pending_version)
    assert client.post(page_url, content=f"reason=r&version={version}", headers=FORM).status_code == 403
    stale = client.post(page_url, content=f"csrf={csrf}&reason=r&version={pending_version}", headers=FORM)
    assert stale.status_code == 409 and "Cancel again if you still want to." in stale.text
    assert 'value="r"' in stale.text  # the reason typed is kept
    assert status_of(client, api_url) == "confirmed"

    client.cookies.clear()
    signed_in(client, "stranger-4")
    own_csrf = hidden(client.get("/bookings").text, "csrf")
    assert client.get(page_url).status_code == 404
    assert client.post(page_url, content=f"csrf={own_csrf}&reason=r&version={version}", headers=FORM).status_code == 404
    assert status_of(client, api_url) == "confirmed"

    client.cookies.clear()
    signed_in(client)
    csrf = hidden(client.get(page_url).text, "csrf")
    done = client.post(page_url, content=f"csrf={csrf}&reason=ill&version={version}", headers=FORM,
                       follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == f"/bookings/{booking_id}?cancelled=1"
    assert "Your refund: $60.00." in client.get(done.headers["location"]).text
    assert status_of(client, api_url) == "cancelled"
    assert f'href="{page_url}"' not in client.get("/bookings").text
