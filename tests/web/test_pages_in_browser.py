"""The booking flows of issue 14 in a real browser against a real ``calbook serve`` (tests/web/conftest.py).

Every scenario of the issue's "Tests in a real browser": sign in by link, find the expert, the month,
the day, change the duration, book, see it pending; the expert edits the weekly schedule, adds a day
off that the user's month shows, confirms; the user cancels and sees the refund; two browsers race for
one slot; the user withdraws a pending request; a CalDAV connection made from the schedule page turns
its busy time into booked slots; keyboard-only booking; axe-core with no serious violations (and
screenshots of each page).
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.support.caldav import Direct
from tests.support.caldav_servers.radicale import RadicaleServer
from tests.support.web import Server, bookable_day, screenshot, sign_in, wait_for

pytestmark = pytest.mark.slow


def css(driver: Any, selector: str) -> Any:
    return driver.find_element("css selector", selector)


def all_css(driver: Any, selector: str) -> list[Any]:
    return driver.find_elements("css selector", selector)


def open_month_with(driver: Any, server: Server, expert: str, name: str, day: Any) -> None:
    """From the experts page: the expert's "Book" link, then the month that holds ``day``."""
    driver.get(server.base + "/experts")
    wait_for(driver, lambda d: css(d, f"a[href='/experts/{expert}']"), f"the Book link of {name}").click()
    wait_for(driver, lambda d: css(d, "table.month"), "the month view")
    if not all_css(driver, f"td[data-date='{day.isoformat()}']"):
        css(driver, "a[rel=next]").click()
    wait_for(driver, lambda d: css(d, f"td[data-date='{day.isoformat()}']"), f"{day} in the month view")


def day_status(driver: Any, server: Server, expert: str, day: Any) -> str:
    driver.get(f"{server.base}/experts/{expert}?month={day.strftime('%Y-%m')}")
    return str(wait_for(driver, lambda d: css(d, f"td[data-date='{day.isoformat()}']"), "the day cell")
               .get_attribute("data-status"))


def test_book_confirm_day_off_and_cancel_with_refund(server: Server, browsers: Any) -> None:
    from selenium.webdriver.support.ui import Select

    expert, user = "expert-flow", "user-flow"
    server.publish(expert, "Ada Flow")
    day = bookable_day(3)
    day_off, closed_weekday = day + timedelta(days=1), day + timedelta(days=3)
    person = browsers()
    sign_in(person, server, user)
    screenshot(person, "experts")
    card = wait_for(person, lambda d: [c for c in all_css(d, "li.expert") if "Ada Flow" in c.text], "the expert")
    assert "$120.00 per hour" in card[0].text and "UTC" in card[0].text

    open_month_with(person, server, expert, "Ada Flow", day)
    screenshot(person, "month")
    assert css(person, f"td[data-date='{day_off.isoformat()}']").get_attribute("data-status") == "available"
    assert css(person, f"td[data-date='{closed_weekday.isoformat()}']").get_attribute("data-status") == "available"
    assert "Available" in css(person, ".legend").text  # the legend says it in words, not colour alone
    css(person, f"td[data-date='{day.isoformat()}'] a").click()
    wait_for(person, lambda d: css(d, "select#duration"), "the slot picker")
    labels = [o.text for o in Select(css(person, "select#duration")).options]
    assert labels[:3] == ["1 hour", "1.25 hours", "1.5 hours"] and labels[-1] == "3 hours"
    Select(css(person, "select#duration")).select_by_value("90")  # the page shows the new times on change
    wait_for(person, lambda d: "duration=90" in d.current_url, "the 90-minute slots")
    assert [h.text for h in all_css(person, ".slot-group h2")] == ["Morning", "Afternoon"]
    screenshot(person, "day")
    start = f"{day.isoformat()}T10:00:00Z"
    slot = css(person, f"a.slot.available[data-start='{start}']")
    assert "$180.00" in slot.text
    slot.click()

    wait_for(person, lambda d: css(d, "button#book"), "the confirmation page")
    assert "$180.00" in css(person, "#price").text
    policy = css(person, "ul.policy").text
    assert "Free cancellation until 24 hours" in policy and "50%" in policy and "No refund" in policy
    css(person, "input[value=audio_call]").click()
    css(person, "#topic").send_keys("Quarterly taxes")
    screenshot(person, "confirm")
    css(person, "button#book").click()
    outcome = wait_for(person, lambda d: css(d, "#outcome"), "the outcome")
    assert "pending" in outcome.text.lower() and "awaiting the expert" in outcome.text
    assert "Pending" in css(person, ".badge").text and "Audio call" in css(person, "dl.facts").text
    booking_id = person.current_url.split("/bookings/")[1].split("?")[0]
    screenshot(person, "booking")

    # The expert: edits the weekly schedule, adds a day off, confirms the booking.
    pro = browsers()
    sign_in(pro, server, expert)
    pro.get(server.base + "/schedule")
    weekday = closed_weekday.strftime("%a").lower()
    box = wait_for(pro, lambda d: css(d, f"#{weekday}-available"), "the weekly editor")
    assert box.is_selected()
    box.click()
    css(pro, "#save-weekly").click()
    assert "Saved" in wait_for(pro, lambda d: css(d, "#notice"), "the saved notice").text
    assert not css(pro, f"#{weekday}-available").is_selected()
    # An end before the start is refused inline, next to its day, and nothing is saved.
    first = "mon"
    pro.execute_script("arguments[0].value = '18:00'; arguments[1].value = '17:30';",
                       css(pro, f"#{first}-start-1"), css(pro, f"#{first}-end-1"))
    css(pro, "#save-weekly").click()
    error = wait_for(pro, lambda d: css(d, f"#error-{first}"), "the inline error")
    assert "end must be after start" in error.text
    pro.get(server.base + "/schedule")
    pro.execute_script("arguments[0].value = arguments[1]", css(pro, "#exception-date"), day_off.isoformat())
    css(pro, "#exception-reason").send_keys("Conference")
    css(pro, "#add-exception").click()
    wait_for(pro, lambda d: css(d, f"li[data-exception='{day_off.isoformat()}']"), "the day off in the list")
    screenshot(pro, "schedule")
    assert day_status(person, server, expert, day_off) == "unavailable"
    assert day_status(person, server, expert, closed_weekday) == "unavailable"
    pro.get(server.base + "/schedule")
    css(pro, f"li[data-booking='{booking_id}'] button[type=submit]").click()
    assert "confirmed" in wait_for(pro, lambda d: css(d, "#notice"), "the confirm notice").text

    # The user sees it confirmed, cancels, and is told the refund before and after.
    person.get(f"{server.base}/bookings/{booking_id}")
    assert "Confirmed" in wait_for(person, lambda d: css(d, ".badge"), "the badge").text
    person.get(f"{server.base}/bookings")
    assert booking_id in css(person, "li.booking").get_attribute("data-booking")
    screenshot(person, "bookings")
    css(person, f"li.booking[data-booking='{booking_id}'] a.button.danger").click()  # "Cancel…" in the list
    assert "$180.00" in wait_for(person, lambda d: css(d, "#refund"), "the refund preview").text
    assert "Free cancellation until 24 hours" in css(person, "ul.policy").text  # the policy behind the refund
    screenshot(person, "cancel")
    css(person, "#reason").send_keys("Something came up")
    css(person, "#confirm-cancel").click()
    assert "Your refund: $180.00" in wait_for(person, lambda d: css(d, "#outcome"), "the cancel outcome").text
    assert "Cancelled" in css(person, ".badge").text


def test_the_user_withdraws_a_pending_request_from_my_bookings(server: Server, browsers: Any) -> None:
    expert, user = "expert-withdraw", "user-withdraw"
    server.publish(expert, "Wendy Withdraw")
    day = bookable_day(8)
    made = server.api("POST", "/v1/booking-requests", user, json={
        "expertId": expert, "requestedDurationMinutes": 60, "type": "video_call",
        "proposedSlots": [{"startTime": f"{day.isoformat()}T{hour}:00:00Z"} for hour in (10, 14)]})
    assert made.status_code == 201, made.text
    request_id = made.json()["id"]
    person = browsers()
    sign_in(person, server, user)
    person.get(server.base + "/bookings")
    card = wait_for(person, lambda d: css(d, f"li[data-request='{request_id}']"), "the request in the list")
    assert "Pending" in card.text and "Wendy Withdraw" in card.text
    css(person, f"li[data-request='{request_id}'] a.button.danger").click()  # "Withdraw…"
    wait_for(person, lambda d: css(d, "#confirm-withdraw"), "the confirmation step")
    assert "nothing to pay or refund" in css(person, "#consequence").text
    screenshot(person, "withdraw")
    css(person, "#confirm-withdraw").click()
    assert "withdrawn" in wait_for(person, lambda d: css(d, "#notice"), "the withdrawn notice").text
    card = css(person, f"li[data-request='{request_id}']")
    assert "Withdrawn" in card.text and not card.find_elements("css selector", "a.button.danger")
    assert server.api("GET", f"/v1/booking-requests/{request_id}", user).json()["status"] == "withdrawn"


def test_two_browsers_race_for_one_slot_and_the_loser_is_told(server: Server, browsers: Any) -> None:
    expert = "expert-race"
    server.publish(expert, "Race Expert")
    day = bookable_day(4)
    start = f"{day.isoformat()}T11:00:00Z"
    first, second = browsers(), browsers()
    for driver, user in ((first, "user-race-1"), (second, "user-race-2")):
        sign_in(driver, server, user)
        driver.get(f"{server.base}/experts/{expert}/{day.isoformat()}/confirm?start={start}&duration=60")
        wait_for(driver, lambda d: css(d, "button#book"), "the confirmation page")
    css(first, "button#book").click()
    assert "pending" in wait_for(first, lambda d: css(d, "#outcome"), "the winner's outcome").text
    css(second, "button#book").click()
    message = wait_for(second, lambda d: css(d, "#slot-message"), "the loser's message")
    assert "no longer available" in message.text
    booked = css(second, f".slot.booked[data-start='{start}']")
    assert booked.tag_name == "span" and "Booked" in booked.text  # shown, not clickable
    assert all_css(second, "a.slot.available"), "fresh free slots are offered"
    screenshot(second, "slot-taken")


def test_caldav_connection_from_the_schedule_page_books_its_busy_time(
    server: Server, browsers: Any, tmp_path: Path,
) -> None:
    radicale = RadicaleServer(tmp_path)
    radicale.start()
    try:
        account = radicale.new_account()
        direct = Direct(radicale.port, account)
        calendar = direct.make_calendar("Work")
        day = bookable_day(5)
        stamp = day.strftime("%Y%m%d")
        direct.put(f"{calendar}busy.ics", "\r\n".join([
            "BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//test//web//EN", "BEGIN:VEVENT", "UID:web-busy-1",
            f"DTSTAMP:{stamp}T000000Z", f"DTSTART:{stamp}T130000Z", f"DTEND:{stamp}T140000Z", "SUMMARY:Dentist",
            "END:VEVENT", "END:VCALENDAR", ""]))
        expert = "expert-caldav"
        server.publish(expert, "Cal Expert", bufferBetweenBookingsMinutes=0)
        viewer = browsers()
        sign_in(viewer, server, "user-caldav")
        slot_url = f"{server.base}/experts/{expert}/{day.isoformat()}?duration=60"
        start = f"{day.isoformat()}T13:00:00Z"
        viewer.get(slot_url)
        assert css(viewer, f"a.slot.available[data-start='{start}']")  # free before the calendar is connected

        pro = browsers()
        sign_in(pro, server, expert)
        pro.get(server.base + "/schedule")
        # A wrong password first: the server's refusal in words on the page, nothing stored.
        wait_for(pro, lambda d: css(d, "#caldav-url"), "the CalDAV form").send_keys(f"http://127.0.0.1:{radicale.port}/")
        css(pro, "#caldav-username").send_keys(account.username)
        css(pro, "#caldav-password").send_keys("not-the-password")
        css(pro, "#connect-caldav").click()
        refused = wait_for(pro, lambda d: css(d, "#error-connect-caldav"), "the refusal")
        assert refused.text.strip() and not all_css(pro, "li.connection")
        css(pro, "#caldav-url").clear()
        css(pro, "#caldav-url").send_keys(f"http://127.0.0.1:{radicale.port}/")
        css(pro, "#caldav-username").clear()
        css(pro, "#caldav-username").send_keys(account.username)
        css(pro, "#caldav-password").send_keys(account.password)
        css(pro, "#connect-caldav").click()
        assert "connected" in wait_for(pro, lambda d: css(d, "#notice"), "the connected notice").text

        # The worker of `calbook serve` runs the queued sync; the page says when it has.
        def synced(d: Any) -> bool:
            d.get(server.base + "/schedule")
            return css(d, "li.connection").get_attribute("data-synced") == "yes"

        wait_for(pro, synced, "the connection's first sync")
        assert "Work" in css(pro, "li.connection").text  # its calendars, to choose busy ones and the destination
        pro.execute_script("arguments[0].scrollIntoView()", css(pro, "#calendars-title"))
        screenshot(pro, "calendars")

        def booked(d: Any) -> bool:
            d.get(slot_url)
            return bool(all_css(d, f".slot.booked[data-start='{start}']"))

        wait_for(viewer, booked, "the busy hour to show as booked")
        assert not all_css(viewer, f"a.slot.available[data-start='{start}']")
        assert all_css(viewer, f"a.slot.available[data-start='{day.isoformat()}T10:00:00Z']")
    finally:
        radicale.stop()


def test_booking_by_keyboard_alone(server: Server, browsers: Any) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    expert = "expert-keys"
    server.publish(expert, "Key Expert")
    day = bookable_day(6)
    driver = browsers()
    sign_in(driver, server, "user-keys")

    def tab_to(selector: str, limit: int = 300) -> None:
        for _ in range(limit):
            ActionChains(driver).send_keys(Keys.TAB).perform()
            if driver.execute_script("return document.activeElement.matches(arguments[0])", selector):
                outline = driver.execute_script("return getComputedStyle(document.activeElement).outlineStyle")
                assert outline != "none", f"{selector} has no visible focus"
                return
        raise AssertionError(f"{selector} is not reachable by Tab")

    def press(selector: str) -> None:
        tab_to(selector)
        ActionChains(driver).send_keys(Keys.ENTER).perform()

    driver.get(server.base + "/experts")
    press(f"a[href='/experts/{expert}']")
    wait_for(driver, lambda d: css(d, "table.month"), "the month")
    if not all_css(driver, f"td[data-date='{day.isoformat()}']"):
        press("a[rel=next]")
        wait_for(driver, lambda d: css(d, f"td[data-date='{day.isoformat()}']"), "the next month")
    press(f"td[data-date='{day.isoformat()}'] a")
    wait_for(driver, lambda d: css(d, "select#duration"), "the slot picker")
    press(f"a.slot.available[data-start='{day.isoformat()}T14:00:00Z']")
    wait_for(driver, lambda d: css(d, "button#book"), "the confirmation")
    tab_to("#topic")
    ActionChains(driver).send_keys("By keyboard").perform()
    press("button#book")
    outcome = wait_for(driver, lambda d: css(d, "#outcome"), "the outcome")
    assert "pending" in outcome.text


AXE = None


def _axe_source() -> str:
    import axe_selenium_python

    return (Path(axe_selenium_python.__file__).parent / "node_modules" / "axe-core" / "axe.min.js").read_text()


def serious_violations(driver: Any) -> list[dict[str, Any]]:
    driver.execute_script(_axe_source())
    found = driver.execute_async_script(
        "var done = arguments[arguments.length - 1];"
        "axe.run(document, {}, function (error, result) { done(error ? {error: String(error)} : result.violations); });"
    )
    assert not isinstance(found, dict), found
    return [{"id": v["id"], "impact": v["impact"], "nodes": [n["html"] for n in v["nodes"]][:3]}
            for v in found if v["impact"] in ("serious", "critical")]


@pytest.mark.parametrize("width", [1280, 390])
def test_every_page_passes_axe_and_fits_a_phone(server: Server, browsers: Any, width: int) -> None:
    expert, user = f"expert-axe-{width}", f"user-axe-{width}"
    server.publish(expert, "Axe Expert")
    day = bookable_day(7)
    start = f"{day.isoformat()}T09:00:00Z"
    created = server.api("POST", "/v1/bookings", user, json={
        "expertId": expert, "startTime": f"{day.isoformat()}T15:00:00Z", "durationMinutes": 60, "type": "video_call"})
    assert created.status_code == 201, created.text
    booking = created.json()["id"]
    asked = server.api("POST", "/v1/booking-requests", user, json={
        "expertId": expert, "requestedDurationMinutes": 60, "type": "video_call",
        "proposedSlots": [{"startTime": f"{day.isoformat()}T11:00:00Z"}]})
    assert asked.status_code == 201, asked.text
    driver = browsers(width=width, height=900)
    driver.get(server.base + "/login")
    pages = {"login": "/login"}
    sign_in(driver, server, user)
    pages.update({
        "experts": "/experts", "month": f"/experts/{expert}?month={day.strftime('%Y-%m')}",
        "day": f"/experts/{expert}/{day.isoformat()}", "confirm": f"/experts/{expert}/{day.isoformat()}/confirm"
                                                                   f"?start={start}&duration=60",
        "bookings": "/bookings", "booking": f"/bookings/{booking}", "cancel": f"/bookings/{booking}/cancel",
        "withdraw": f"/bookings/requests/{asked.json()['id']}/withdraw", "timezone": "/timezone",
    })
    failures = {}
    for name, path in pages.items():
        driver.get(server.base + path)
        wait_for(driver, lambda d: css(d, "main h1"), f"the {name} page")
        violations = serious_violations(driver)
        if violations:
            failures[name] = violations
        overflow = driver.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1, f"{name} scrolls sideways by {overflow}px at {width}px"
        if width == 390:
            screenshot(driver, f"phone-{name}")
    sign_in(driver, server, expert)
    driver.get(server.base + "/schedule")
    wait_for(driver, lambda d: css(d, "main h1"), "the schedule")
    violations = serious_violations(driver)
    if violations:
        failures["schedule"] = violations
    assert not failures, json.dumps(failures, indent=1)
