"""``/v1/me``: read and update one's own profile."""

from __future__ import annotations

from tests.api.conftest import USER, assert_problem, auth


def test_profile_round_trip(client):
    assert client.get("/v1/me", headers=auth(USER)).json() == {
        "id": USER, "email": None, "displayName": None, "timezone": None,
    }
    body = {"email": "ann@example.com", "displayName": "Ann", "timezone": "Europe/Paris"}
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
