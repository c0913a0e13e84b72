"""The push-notification receiver's helpers: token check, header parsing, action."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from connectors.google.webhook import (
    WebhookAction,
    decide_action,
    hash_channel_token,
    parse_notification,
    token_matches,
)

TOKEN = "channel-token-0123456789abcdefghijklmnop"
STORED = hash_channel_token(TOKEN)


def headers(state: str = "exists", token: str | None = TOKEN) -> dict[str, str]:
    base = {
        "X-Goog-Channel-ID": "chan-1",
        "X-Goog-Resource-ID": "res-1",
        "X-Goog-Resource-State": state,
        "X-Goog-Message-Number": "7",
        "X-Goog-Channel-Expiration": "Tue, 19 Nov 2030 01:13:52 GMT",
        "X-Goog-Resource-URI": "https://www.googleapis.com/calendar/v3/calendars/x/events",
    }
    if token is not None:
        base["X-Goog-Channel-Token"] = token
    return base


def test_hash_is_stable_and_hides_the_token() -> None:
    assert hash_channel_token(TOKEN) == STORED
    assert TOKEN not in STORED and len(STORED) == 64
    assert token_matches(STORED, TOKEN)
    assert not token_matches(STORED, TOKEN + "x")
    assert not token_matches(None, TOKEN)


def test_parse_reads_the_goog_headers_case_insensitively() -> None:
    parsed = parse_notification({k.lower(): v for k, v in headers().items()})
    assert parsed is not None
    assert parsed.channel_id == "chan-1"
    assert parsed.resource_id == "res-1"
    assert parsed.resource_state == "exists"
    assert parsed.message_number == 7
    assert parsed.expiration == datetime(2030, 11, 19, 1, 13, 52, tzinfo=UTC)
    assert parse_notification({"Content-Type": "application/json"}) is None


@pytest.mark.parametrize(
    ("state", "action"),
    [("exists", WebhookAction.QUEUE_SYNC), ("not_exists", WebhookAction.QUEUE_SYNC), ("sync", WebhookAction.IGNORE)],
)
def test_good_token_decides_by_resource_state(state: str, action: WebhookAction) -> None:
    assert decide_action(parse_notification(headers(state)), STORED, "res-1") is action


def test_wrong_token_is_rejected() -> None:
    assert decide_action(parse_notification(headers(token="guess")), STORED) is WebhookAction.REJECT


def test_missing_token_is_rejected() -> None:
    assert decide_action(parse_notification(headers(token=None)), STORED) is WebhookAction.REJECT


def test_unknown_channel_or_other_resource_is_rejected() -> None:
    assert decide_action(parse_notification(headers()), None) is WebhookAction.REJECT
    assert decide_action(parse_notification(headers()), STORED, "res-other") is WebhookAction.REJECT
    assert decide_action(None, STORED) is WebhookAction.REJECT
