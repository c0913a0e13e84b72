"""``/v1/me``: read and update one's own profile."""

from __future__ import annotations

from tests.support.api import USER, assert_problem, auth


def test_profile_round_trip(client):
    assert client.get("/v1/me", headers=auth(USER)).json() == {
        "id": USER, "email": None, "displayName": None, "timezone": None, "headline": None, "bio": None,
    }
    body = {"email": "ann@example.com", "displayName": "Ann", "timezone": "Europe/Paris", "headline": "Tax advice",
            "bio": "Twenty years of it."}
    response = client.put("/v1/me", json=body, headers=auth(USER))
    assert response.status_code == 200, response.text
    assert response.json() == {"id": USER, **body}
    partial = client.put("/v1/me", json={"displayName": "Ann B."}, headers=auth(USER))
    assert partial.json() == {"id": USER, **body, "displayName": "Ann B."}
    assert client.get("/v1/me", headers=auth(USER)).json()["displayName"] == "Ann B."


def test_profile_validation(client):
    for body in ({"email": "not-an-address"}, {"timezone": "Atlantis/Capital"}, {"displayName": 5},
                 {"nickname": "x"}, {"displayName": "a" * 201}, {"displayName": "nul\u0000byte"}):
        assert_problem(client.put("/v1/me", json=body, headers=auth(USER)), 422, "validation_error")


def test_addresses_and_names_that_could_not_go_into_a_mail_header_are_refused(client):
    """A line break in a profile used to break every mail of the booking (and, before the
    outbox ran handlers apart, its webhooks and calendar push too)."""
    bad_emails = ["ann@example.com\r\nBcc: all@example.org", "ann@example.com\n", "ann @example.com",
                  "ann@exa mple.com", "ann@", "@example.com", "ann@example..com", "ann..b@example.com",
                  "ann@-example.com", "änn@example.com", "ann@example.com\u2028", "a\tb@example.com",
                  "<ann@example.com>", "Ann <ann@example.com>"]
    for email in bad_emails:
        body = assert_problem(client.put("/v1/me", json={"email": email}, headers=auth(USER)), 422,
                              "validation_error")
        assert body["errors"][0]["field"] == "email", email
    for name in ["Ann\r\nBcc: all@example.org", "Ann\nB", "Ann\x07", "Ann\u2028B", "Ann\u0085B", "Ann\tB"]:
        body = assert_problem(client.put("/v1/me", json={"displayName": name}, headers=auth(USER)), 422,
                              "validation_error")
        assert body["errors"][0]["field"] == "displayName", name
    assert client.get("/v1/me", headers=auth(USER)).json()["email"] is None
    for email in ["ann.b+tag@example.com", "root@localhost", "o'brien@xn--bcher-kva.example"]:
        assert client.put("/v1/me", json={"email": email}, headers=auth(USER)).status_code == 200, email
    assert client.put("/v1/me", json={"displayName": "Zoë O'Brien-Łukasz 山田"}, headers=auth(USER)).status_code == 200
