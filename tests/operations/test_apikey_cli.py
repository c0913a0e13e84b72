"""``calbook apikey`` as an operator types it: the key printed once, listed without it, revoked."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi.testclient import TestClient

from api.app import create_app
from booking_engine.store.db import Store
from tests.support.api import make_settings
from tests.support.processes import common_env, processes


def test_create_list_revoke(tmp_path: Path) -> None:
    data = tmp_path / "data"
    url = f"sqlite:///{tmp_path / 'calbook.sqlite'}"
    env = common_env(data, CALBOOK_DATABASE_URL=url)
    with processes(tmp_path) as group:
        assert group.run(["migrate"], env).returncode == 0
        created = group.run(["apikey", "create", "--name", "payments", "--scope", "payments",
                             "--scope", "bookings:read"], env)
        assert created.returncode == 0, created.stderr
        secret = created.stdout.strip()
        assert secret.startswith("cbk_") and len(created.stdout.splitlines()) == 1
        assert "not shown again" in created.stderr and secret not in created.stderr
        twice = group.run(["apikey", "create", "--name", "payments", "--scope", "payments"], env)
        assert twice.returncode == 1 and "revoke it first" in twice.stderr
        bad = group.run(["apikey", "create", "--name", "bad name", "--scope", "payments"], env)
        assert bad.returncode == 2 and "Traceback" not in bad.stderr
        listed = group.run(["apikey", "list", "--json"], env)
        table = group.run(["apikey", "list"], env)

        store = Store.from_url(url)
        try:
            with TestClient(create_app(store, make_settings(data))) as client:
                assert client.get("/v1/bookings/nope", headers={"Authorization": f"Bearer {secret}"}).status_code == 404
                revoked = group.run(["apikey", "revoke", "payments"], env)
                assert revoked.returncode == 0, revoked.stderr
                assert client.get("/v1/bookings/nope", headers={"Authorization": f"Bearer {secret}"}).status_code == 401
        finally:
            store.dispose()
        unknown = group.run(["apikey", "revoke", "payments"], env)
    assert unknown.returncode == 1 and "no active service key" in unknown.stderr
    keys = json.loads(listed.stdout)
    expected = [("payments", ["bookings:read", "payments"], None)]
    assert [(k["name"], k["scopes"], k["revokedAt"]) for k in keys] == expected
    assert keys[0]["prefix"] == secret[:12] and secret not in listed.stdout and secret not in table.stdout
    assert "payments" in table.stdout and "active" in table.stdout
