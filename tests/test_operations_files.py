"""The files operators run — Dockerfile, compose.yaml, README — agree with the code.

Docker cannot run on the CI machines, so these keep the image honest where it can be
checked: the same torch pin and entry point as the Makefile, a health check on a route the
app really serves, and a configuration table that lists every setting.
"""

from __future__ import annotations

import re
import subprocess
import sys

import yaml
from fastapi.testclient import TestClient

from newsletter.cli import app as cli_app
from newsletter.settings import Settings
from newsletter.web import create_app
from tests.support.requirements import ROOT

DOCKERFILE = (ROOT / "Dockerfile").read_text()


def _torch_pin(text: str) -> set[str]:
    return set(re.findall(r"torch==([\d.]+)", text))


def test_the_image_pins_the_same_cpu_torch_as_the_makefile_and_the_project() -> None:
    pins = [
        _torch_pin(DOCKERFILE),
        _torch_pin((ROOT / "Makefile").read_text()),
        _torch_pin((ROOT / "pyproject.toml").read_text()),
    ]
    assert len(pins[0]) == 1 and pins[0] == pins[1] == pins[2]
    assert "download.pytorch.org/whl/cpu" in DOCKERFILE


def test_the_image_runs_newsletter_serve_as_a_non_root_user_with_a_data_volume(tmp_path) -> None:  # type: ignore[no-untyped-def]
    cmd = re.search(r"^CMD (\[.*\])$", DOCKERFILE, re.M)
    assert cmd is not None
    argv = yaml.safe_load(cmd.group(1))
    assert argv[:2] == ["newsletter", "serve"]
    assert "serve" in {command.name for command in cli_app.registered_commands}
    assert re.search(r"^USER (?!root)\w+", DOCKERFILE, re.M)
    assert 'VOLUME ["/data"]' in DOCKERFILE and "NEWSLETTER_HOME=/data" in DOCKERFILE
    assert re.search(r"^FROM python:3\.\d+-slim", DOCKERFILE, re.M)


def test_the_health_check_calls_a_route_the_app_serves(tmp_path) -> None:  # type: ignore[no-untyped-def]
    check = re.search(r"HEALTHCHECK.*?CMD (.*)$", DOCKERFILE, re.S | re.M)
    assert check is not None and "http://127.0.0.1:8000/healthz" in check.group(1)
    settings = Settings(home=tmp_path, database_url=f"sqlite:///{tmp_path / 'h.db'}")
    with TestClient(create_app(settings)) as client:
        assert client.get("/healthz").status_code == 200


def test_compose_migrates_postgresql_before_the_app_starts() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    assert services["migrate"]["command"] == ["newsletter", "db", "upgrade"]
    assert services["app"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["migrate"]["depends_on"]["db"]["condition"] == "service_healthy"
    assert services["app"]["environment"]["NEWSLETTER_DATABASE_URL"].startswith("postgresql+psycopg://")


def test_the_readme_lists_every_setting_as_the_settings_class_declares_it() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "settings-table"), "--check"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    readme = (ROOT / "README.md").read_text()
    for name in Settings.model_fields:
        assert f"NEWSLETTER_{name.upper()}" in readme or name == "from_address"
