"""The ``calbook`` command as an operator types it: version, keys, bad settings, a quiet migration."""

from __future__ import annotations

import re
from importlib.metadata import version
from pathlib import Path

from cryptography.fernet import Fernet
from fastapi.testclient import TestClient

from api.app import create_app
from tests.support.api import make_settings
from tests.support.processes import ROOT, clean_env, common_env, processes


def test_version_is_the_package_version_everywhere(tmp_path: Path) -> None:
    expected = version("calbook")
    with processes(tmp_path) as group:
        shown = group.run(["--version"], clean_env())
    assert shown.returncode == 0 and shown.stdout.strip() == f"calbook {expected}"
    with TestClient(create_app(settings=make_settings(tmp_path))) as client:
        assert client.get("/openapi.json").json()["info"]["version"] == expected
    assert f'version = "{expected}"' in (ROOT / "pyproject.toml").read_text()


def test_keygen_prints_fresh_usable_secrets(tmp_path: Path) -> None:
    with processes(tmp_path) as group:
        runs = [group.run(["keygen"], clean_env()) for _ in range(2)]
    values = []
    for run in runs:
        assert run.returncode == 0, run.stderr
        lines = dict(line.split("=", 1) for line in run.stdout.splitlines())
        assert set(lines) == {"CALBOOK_JWT_SECRET", "CALBOOK_ENCRYPTION_KEY"}
        assert len(lines["CALBOOK_JWT_SECRET"]) >= 43 and re.fullmatch(r"[A-Za-z0-9_-]+", lines["CALBOOK_JWT_SECRET"])
        token = Fernet(lines["CALBOOK_ENCRYPTION_KEY"].encode()).encrypt(b"x")
        assert Fernet(lines["CALBOOK_ENCRYPTION_KEY"].encode()).decrypt(token) == b"x"
        values.append(lines)
    assert values[0] != values[1]
    example = (ROOT / ".env.example").read_text()
    assert "calbook keygen" in example
    assert "CALBOOK_JWT_SECRET" in example and "CALBOOK_ENCRYPTION_KEY" in example
    compose = (ROOT / "docker-compose.yml").read_text()
    assert "${CALBOOK_JWT_SECRET:?" in compose and "${CALBOOK_ENCRYPTION_KEY:?" in compose


def test_a_bad_setting_is_one_clear_line_and_help_still_works(tmp_path: Path) -> None:
    with processes(tmp_path) as group:
        env = clean_env(CALBOOK_LOG_LEVEL="foo", CALBOOK_DATA_DIR=str(tmp_path / "data"))
        helped = group.run(["--help"], env)
        assert helped.returncode == 0 and "usage: calbook" in helped.stdout
        refused = group.run(["migrate"], env)
    assert refused.returncode == 2
    assert "Traceback" not in refused.stderr
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("calbook: CALBOOK_LOG_LEVEL: "), refused.stderr
    assert "'foo'" in lines[0] and "WARNING" in lines[0]


def test_migrate_says_what_it_did_without_alembic_noise(tmp_path: Path) -> None:
    with processes(tmp_path) as group:
        env = common_env(tmp_path / "data")
        first, again = group.run(["migrate"], env), group.run(["migrate"], env)
    assert first.returncode == 0 and again.returncode == 0
    assert re.fullmatch(r"database is at the head revision \(\d{4}\)\n", first.stdout)
    assert re.search(r"INFO migrate calbook: database migrated from empty to \d{4}", first.stderr), first.stderr
    assert len(first.stderr.strip().splitlines()) == 1, first.stderr
    assert "alembic" not in first.stderr and again.stderr == ""

