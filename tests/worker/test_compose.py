"""docker-compose.yml cannot run here (no Docker): check that it names only real things."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from config.cli import build_parser
from config.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _subcommands() -> set[str]:
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return set(action.choices)  # type: ignore[arg-type]


def test_services_exist(compose: dict[str, Any]) -> None:
    assert {"postgres", "redis", "migrate", "api", "worker", "beat"} <= set(compose["services"])


def test_calbook_services_share_one_build_and_run_real_subcommands(compose: dict[str, Any]) -> None:
    services = compose["services"]
    parser = build_parser()
    for name, expected in (("migrate", "migrate"), ("api", "api"), ("worker", "worker"), ("beat", "beat")):
        svc = services[name]
        assert svc["build"] == "." and svc["image"] == "calbook:local"
        command = svc["command"]
        assert command[0] == expected and command[0] in _subcommands()
        parsed = parser.parse_args(command)  # options must parse too
        assert parsed.command == expected
    assert (ROOT / "Dockerfile").exists()
    assert 'ENTRYPOINT ["calbook"]' in (ROOT / "Dockerfile").read_text()


def test_every_calbook_variable_is_a_setting(compose: dict[str, Any]) -> None:
    fields = set(Settings.model_fields)
    text = (ROOT / "docker-compose.yml").read_text()
    names = set(re.findall(r"\bCALBOOK_[A-Z0-9_]+", text))
    assert names, "compose names no CALBOOK_ variable"
    for name in names:
        assert name.removeprefix("CALBOOK_").lower() in fields, name


def test_health_checks_and_ordering(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in ("postgres", "redis", "api", "worker", "beat"):
        assert "healthcheck" in services[name], name
    assert "/healthz" in " ".join(services["api"]["healthcheck"]["test"])
    for name in ("api", "worker", "beat"):
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["migrate"]["restart"] == "no"
    env = services["worker"]["environment"]
    assert env["CALBOOK_DATABASE_URL"].startswith("postgresql+psycopg://")
    assert env["CALBOOK_BROKER_URL"].startswith("redis://redis:")
