"""Fault injection through the proxy, on every server: each failure ends as the right connector error class."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from connectors.base import AuthError, BookingEvent, ConnectorError, EventRejected, PermanentError, TransientError
from connectors.caldav import CalDAVProvider
from tests.support.caldav import LOCAL, WINDOW_END, WINDOW_START, Direct, vevent
from tests.support.caldav_servers import PASSWORD, USERNAME, Account, CalDAVServer, Fault, FaultProxy, free_port

BOOKING = BookingEvent(
    booking_id="b-0001",
    start=datetime(2025, 3, 10, 9, tzinfo=UTC),
    end=datetime(2025, 3, 10, 10, tzinfo=UTC),
    summary="Call",
    description="",
    sequence=0,
)


def no_secret(err: ConnectorError) -> None:
    assert PASSWORD not in str(err)


@pytest.mark.parametrize(
    ("status", "headers", "expected"),
    [
        (429, {"Retry-After": "7"}, TransientError),
        (500, {}, TransientError),
        (502, {}, TransientError),
        (503, {}, TransientError),
        (503, {"Retry-After": "3"}, TransientError),
        (507, {}, TransientError),
        (401, {"WWW-Authenticate": 'Basic realm="x"'}, AuthError),
        (403, {}, AuthError),
        (400, {}, PermanentError),
        (409, {}, PermanentError),
        (415, {}, PermanentError),
    ],
)
def test_put_errors_are_classified(
    provider: CalDAVProvider,
    proxy: FaultProxy,
    calendar_id: str,
    status: int,
    headers: dict[str, str],
    expected: type[ConnectorError],
) -> None:
    proxy.faults.append(Fault("PUT", status, headers=headers))
    with pytest.raises(expected) as info:
        provider.put_event(calendar_id, BOOKING, None)
    assert type(info.value) is expected
    no_secret(info.value)
    if "Retry-After" in headers:
        assert isinstance(info.value, TransientError) and info.value.retry_after == float(
            headers["Retry-After"]
        )


def dav_error(*conditions: str) -> bytes:
    inner = "".join(conditions)
    return ('<?xml version="1.0" encoding="utf-8"?><D:error xmlns:D="DAV:" '
            f'xmlns:C="urn:ietf:params:xml:ns:caldav">{inner}</D:error>').encode()


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (403, dav_error("<C:valid-calendar-data/>"), EventRejected),
        (403, dav_error("<C:no-uid-conflict/>"), EventRejected),  # no href: nowhere to go
        (409, dav_error("<C:supported-calendar-component/>"), EventRejected),
        (403, dav_error("<C:max-resource-size/>"), EventRejected),
        (403, dav_error("<D:need-privileges><D:resource><D:href>/x/</D:href><D:privilege><D:write/>"
                        "</D:privilege></D:resource></D:need-privileges>"), PermanentError),
    ],
    ids=["invalid-data", "uid-conflict-without-href", "409-component", "too-large", "need-privileges"],
)
def test_a_failed_precondition_is_not_an_auth_failure(
    provider: CalDAVProvider, proxy: FaultProxy, calendar_id: str, status: int, body: bytes,
    expected: type[ConnectorError],
) -> None:
    """A 403/409 with a ``DAV:error`` body says what the server will not take; the credentials
    are fine, so the connection must not turn ``reauth_required``."""
    proxy.faults.append(Fault("PUT", status, body=body))
    with pytest.raises(expected) as info:
        provider.put_event(calendar_id, BOOKING, None)
    assert type(info.value) is expected and not isinstance(info.value, AuthError)
    assert "precondition" in str(info.value) or "privilege" in str(info.value)


def test_put_that_keeps_failing_its_precondition_is_transient(
    provider: CalDAVProvider, proxy: FaultProxy, calendar_id: str
) -> None:
    proxy.faults.append(Fault("PUT", 412))
    with pytest.raises(TransientError):
        provider.put_event(calendar_id, BOOKING, None)
    assert proxy.count("PUT") == 3  # bounded retries, not a loop


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (429, TransientError),
        (503, TransientError),
        (401, AuthError),
        (500, TransientError),
        (400, PermanentError),
    ],
)
def test_delete_errors_are_classified(
    provider: CalDAVProvider, proxy: FaultProxy, calendar_id: str, status: int, expected: type[ConnectorError]
) -> None:
    proxy.faults.append(Fault("DELETE", status))
    with pytest.raises(expected):
        provider.delete_event(calendar_id, BOOKING.booking_id, None)


@pytest.mark.parametrize(
    ("status", "expected"),
    [(429, TransientError), (503, TransientError), (401, AuthError), (502, TransientError)],
)
def test_overload_or_auth_failure_of_a_report_is_raised_not_resynced(
    provider: CalDAVProvider, direct: Direct, proxy: FaultProxy, calendar_path: str, calendar_id: str, status: int,
    expected: type[ConnectorError],
) -> None:
    """The first REPORT of an incremental pull (the sync-collection, or the multiget on a server
    without sync) fails with overload or refused credentials: raised at once, no relisting."""
    first = provider.pull(calendar_id, None, WINDOW_START, WINDOW_END)
    direct.put(calendar_path + "new.ics", vevent("new", "20250301T100000Z", "20250301T110000Z"))
    proxy.faults.append(Fault("REPORT", status))
    proxy.seen.clear()
    with pytest.raises(expected):
        provider.pull(calendar_id, first.cursor, WINDOW_START, WINDOW_END)
    assert [s.method for s in proxy.seen][-1] == "REPORT" and proxy.count("REPORT") == 1


def test_403_on_the_sync_report_relists_but_403_elsewhere_is_auth(
    provider: CalDAVProvider, caldav_server: CalDAVServer, direct: Direct, proxy: FaultProxy, calendar_path: str,
    calendar_id: str,
) -> None:
    first = provider.pull(calendar_id, None, WINDOW_START, WINDOW_END)
    direct.put(calendar_path + "new.ics", vevent("new", "20250301T100000Z", "20250301T110000Z"))
    proxy.faults.append(Fault("REPORT", 403, match="sync-collection", times=1))
    again = provider.pull(calendar_id, first.cursor, WINDOW_START, WINDOW_END)
    assert list(again.upserts) == [calendar_path + "new.ics"]
    if caldav_server.features.sync_collection:  # the refused token was replaced by a fresh one
        assert again.cursor["sync_token"] and again.cursor["sync_token"] != first.cursor["sync_token"]
    proxy.faults.append(Fault("PROPFIND", 403))
    with pytest.raises(AuthError):
        provider.list_calendars()


def test_wrong_password_is_auth_error_from_the_real_server(server_url: str, account: Account, calendar_id: str) -> None:
    with CalDAVProvider(server_url, account.username, "wrong-password", "UTC", url_policy=LOCAL) as provider:
        with pytest.raises(AuthError) as info:
            provider.pull(calendar_id, None, WINDOW_START, WINDOW_END)
        assert "wrong-password" not in str(info.value)
        with pytest.raises(AuthError):
            provider.list_calendars()


def test_missing_calendar_is_permanent(provider: CalDAVProvider, proxy: FaultProxy, account: Account) -> None:
    with pytest.raises(PermanentError):
        provider.pull(proxy.url.rstrip("/") + f"{account.home}does-not-exist/", None, WINDOW_START, WINDOW_END)


def test_server_down_is_transient() -> None:
    url = f"http://127.0.0.1:{free_port()}/"
    with CalDAVProvider(url, USERNAME, PASSWORD, "UTC", timeout=2, url_policy=LOCAL) as provider:
        calendar = url + f"{USERNAME}/cal/"
        for call in (
            provider.list_calendars,
            lambda: provider.pull(calendar, None, WINDOW_START, WINDOW_END),
            lambda: provider.put_event(calendar, BOOKING, None),
            lambda: provider.delete_event(calendar, BOOKING.booking_id, None),
        ):
            with pytest.raises(TransientError) as info:
                call()
            no_secret(info.value)


def test_credentials_in_the_url_never_reach_error_messages(
    server_url: str, proxy: FaultProxy, account: Account
) -> None:
    url = server_url.replace("http://", f"http://{account.username}:{account.password}@")
    proxy.faults.append(Fault("PROPFIND", 500))
    with CalDAVProvider(url, account.username, account.password, "UTC", url_policy=LOCAL) as provider:
        with pytest.raises(TransientError) as info:
            provider.list_calendars()
    no_secret(info.value)
