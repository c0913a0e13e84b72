"""Authentication: HS256 with the server secret, optional RS256 with issuer/audience, 401 otherwise."""

from __future__ import annotations

import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import mint_token
from tests.support.api import OTHER_SECRET, SECRET, USER, assert_problem, make_settings, token

pytestmark = pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")


def _unauthorized(response) -> dict:
    body = assert_problem(response, 401, "unauthenticated")
    assert response.headers["www-authenticate"].startswith("Bearer")
    return body


def test_minted_tokens_work_and_carry_profile_claims(client, api_settings):
    minted = mint_token(USER, api_settings, ttl_seconds=60, email="u@example.com", name="U")
    claims = jwt.decode(minted, SECRET, algorithms=["HS256"])
    assert claims["sub"] == USER and claims["email"] == "u@example.com" and claims["exp"] - claims["iat"] == 60
    assert client.get("/v1/me", headers={"Authorization": f"Bearer {minted}"}).json()["id"] == USER


@pytest.mark.parametrize(
    "header",
    [
        None,
        "Bearer",
        "Bearer ",
        "Basic dXNlcjpwYXNz",
        "Bearer not.a.jwt",
        "Bearer " + "x" * 10000,
        f"Bearer {token(USER, ttl=-3600)}",
        f"Bearer {token(USER, secret=OTHER_SECRET)}",
        "Bearer " + jwt.encode({"sub": USER}, SECRET, algorithm="HS256"),
        "Bearer " + jwt.encode({"exp": int(time.time()) + 60}, SECRET, algorithm="HS256"),
        "Bearer " + jwt.encode({"sub": "", "exp": int(time.time()) + 60}, SECRET, algorithm="HS256"),
        "Bearer " + jwt.encode({"sub": 42, "exp": int(time.time()) + 60}, SECRET, algorithm="HS256"),
        "Bearer " + jwt.encode({"sub": "x" * 65, "exp": int(time.time()) + 60}, SECRET, algorithm="HS256"),
        "Bearer " + jwt.encode({"sub": "a\u0000b", "exp": int(time.time()) + 60}, SECRET, algorithm="HS256"),
        "Bearer " + jwt.encode({"sub": USER, "exp": int(time.time()) + 60}, SECRET * 2, algorithm="HS512"),
        "Bearer " + jwt.encode({"sub": USER, "exp": int(time.time()) + 60}, None, algorithm="none"),
    ],
    ids=["missing", "empty", "blank", "basic", "garbage", "huge", "expired", "other-key", "no-exp", "no-sub",
         "empty-sub", "int-sub", "long-sub", "nul-sub", "hs512", "alg-none"],
)
def test_bad_tokens_are_401(client, header):
    headers = {"Authorization": header} if header is not None else {}
    body = _unauthorized(client.get("/v1/me", headers=headers))
    assert SECRET not in body["detail"]


@pytest.fixture
def rsa_keys(tmp_path):
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    path = tmp_path / "idp.pem"
    path.write_bytes(public_pem)
    return private, path


def _rs256(private, **claims) -> str:
    payload = {"sub": "idp|alice", "exp": int(time.time()) + 60, **claims}
    return jwt.encode(payload, private, algorithm="RS256")


def test_rs256_tokens_from_an_identity_provider(store, tmp_path, rsa_keys):
    private, path = rsa_keys
    settings = make_settings(tmp_path, jwt_public_key_file=path, jwt_issuer="https://idp.example",
                             jwt_audience="calbook")
    with TestClient(create_app(store, settings)) as client:
        good = _rs256(private, iss="https://idp.example", aud="calbook")
        response = client.get("/v1/me", headers={"Authorization": f"Bearer {good}"})
        assert response.status_code == 200 and response.json()["id"] == "idp|alice"
        # HS256 tokens of the server keep working next to the identity provider's.
        assert client.get("/v1/me", headers={"Authorization": f"Bearer {token(USER)}"}).status_code == 200
        other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        for bad in (
            _rs256(private, iss="https://evil.example", aud="calbook"),
            _rs256(private, iss="https://idp.example", aud="someone-else"),
            _rs256(private, aud="calbook"),
            _rs256(private, iss="https://idp.example"),
            _rs256(other, iss="https://idp.example", aud="calbook"),
            _rs256(private, iss="https://idp.example", aud="calbook", exp=int(time.time()) - 3600),
            # The public key must never double as an HMAC secret (algorithm confusion).
            jwt.encode({"sub": "x", "exp": int(time.time()) + 60}, "not-the-key", algorithm="HS256"),
        ):
            _unauthorized(client.get("/v1/me", headers={"Authorization": f"Bearer {bad}"}))


def test_rs256_refused_without_a_configured_key(client, rsa_keys):
    private, _ = rsa_keys
    _unauthorized(client.get("/v1/me", headers={"Authorization": f"Bearer {_rs256(private)}"}))


def test_tokens_living_longer_than_the_maximum_are_refused(store, tmp_path):
    settings = make_settings(tmp_path, jwt_max_lifetime_seconds=7 * 24 * 3600)
    now = int(time.time())
    week = 7 * 24 * 3600
    with TestClient(create_app(store, settings)) as client:
        def status(claims: dict) -> int:
            raw = jwt.encode({"sub": USER, **claims}, SECRET, algorithm="HS256")
            return client.get("/v1/me", headers={"Authorization": f"Bearer {raw}"}).status_code

        assert status({"iat": now, "exp": now + week}) == 200
        assert status({"exp": now + week - 60}) == 200  # no iat: exp - now
        assert status({"iat": now, "exp": now + week + 3600}) == 401
        assert status({"exp": now + week + 3600}) == 401
        assert status({"iat": now, "exp": 10**30}) == 401
        assert status({"exp": 1e30}) == 401
        assert status({"iat": now - 30 * 24 * 3600, "exp": now + 60}) == 401  # issued for 30 days, nearly over
        body = assert_problem(client.get("/v1/me", headers={"Authorization": "Bearer " + jwt.encode(
            {"sub": USER, "exp": now + 10 * week}, SECRET, algorithm="HS256")}), 401, "unauthenticated")
    assert "lives longer" in body["detail"]


def test_the_default_maximum_is_a_month(api_settings):
    assert api_settings.jwt_max_lifetime_seconds == 31 * 24 * 3600


def test_a_token_verified_once_is_still_refused_once_it_expires(client, api_settings):
    """The verified-token cache (api/auth.py) keeps a token only until its exp."""
    import time_machine

    minted = mint_token(USER, api_settings, ttl_seconds=120)
    headers = {"Authorization": f"Bearer {minted}"}
    assert client.get("/v1/me", headers=headers).status_code == 200
    assert client.get("/v1/me", headers=headers).status_code == 200  # from the cache
    with time_machine.travel(time.time() + 600, tick=False):
        body = _unauthorized(client.get("/v1/me", headers=headers))
        assert "expired" in body["detail"]
    tampered = minted[:-2] + ("A" if minted[-2] != "A" else "B") + minted[-1]
    _unauthorized(client.get("/v1/me", headers={"Authorization": f"Bearer {tampered}"}))
