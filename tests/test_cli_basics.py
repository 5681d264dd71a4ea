"""The CLI as a person meets it: help, config, and the real executable."""

from __future__ import annotations

import os
import subprocess
import sys


def test_help_lists_command_groups_with_descriptions(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("--help")
    assert result.exit_code == 0
    for group in ("subscribers", "db", "config"):
        line = next(line for line in result.stdout.splitlines() if line.strip().startswith(group))
        assert len(line.split()) > 2, f"{group} has no description"


def test_config_show_masks_secrets(cli, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("NEWSLETTER_SENDGRID_API_KEY", "SG.very-secret-key")
    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", "another-secret")
    monkeypatch.setenv("NEWSLETTER_DATABASE_URL", "postgresql://u:dbpass@db.example/x")
    result = cli("config", "show", "--format", "json")
    assert result.exit_code == 0
    assert "very-secret" not in result.stdout and "another-secret" not in result.stdout
    assert "dbpass" not in result.stdout
    assert '"sendgrid_api_key": "**********"' in result.stdout


def test_secret_key_is_generated_once_into_home(isolated_env, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from newsletter.settings import Settings

    monkeypatch.delenv("NEWSLETTER_SECRET_KEY")
    first = Settings().signing_key
    assert (isolated_env / "secret_key").stat().st_mode & 0o777 == 0o600
    assert Settings().signing_key == first and len(first) >= 32


def test_python_dash_m_runs_the_cli_and_bad_input_exits_2(isolated_env) -> None:  # type: ignore[no-untyped-def]
    env = {**os.environ, "NEWSLETTER_HOME": str(isolated_env)}
    ok = subprocess.run(
        [sys.executable, "-m", "newsletter", "subscribers", "list", "--format", "json"],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert ok.returncode == 0 and ok.stdout.strip() == "[]", ok.stderr
    bad = subprocess.run(
        [sys.executable, "-m", "newsletter", "subscribers", "add", "nope", "-i", "LoRA"],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [bad.stderr.strip()]
    assert "Traceback" not in bad.stderr


def test_cli_help_does_not_import_torch(isolated_env) -> None:  # type: ignore[no-untyped-def]
    code = "import sys; from newsletter.cli import app; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
