"""The operator's CLI for going live: `doctor`, `--version`, `send --test-to`, a dry run that
fails like the real run, `subscribers send-confirmation`, and progress lines in a log."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.requirements import shared
from tests.support.web import WebhookSigner, body_text, outbox

LIVE = {
    "NEWSLETTER_TRANSPORT": "sendgrid",
    "NEWSLETTER_SENDGRID_API_KEY": "SG.live-key",
    "NEWSLETTER_BASE_URL": "https://digest.example.org",
    "NEWSLETTER_FROM": "Paper Digest <digest@example.org>",
    "NEWSLETTER_POSTAL_ADDRESS": "1 Example Street, 12345 Sampletown",
}


@pytest.fixture
def live(monkeypatch: pytest.MonkeyPatch, database_url: str) -> None:
    """A complete configuration for a live SendGrid service."""
    for name, value in LIVE.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("NEWSLETTER_SENDGRID_WEBHOOK_PUBLIC_KEY", WebhookSigner().public_key)


def test_doctor_passes_on_a_complete_configuration(cli, live) -> None:  # type: ignore[no-untyped-def]
    result = cli("doctor")
    assert result.exit_code == 0, result.output
    assert result.stdout == "" and "checks passed" in result.stderr


def test_doctor_fails_on_sendgrid_without_a_key_one_line_per_problem(cli, live, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("NEWSLETTER_SENDGRID_API_KEY")
    monkeypatch.delenv("NEWSLETTER_SENDGRID_WEBHOOK_PUBLIC_KEY")
    result = cli("doctor")
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert len(lines) == 2, lines
    assert "NEWSLETTER_SENDGRID_API_KEY" in lines[0]
    assert "NEWSLETTER_SENDGRID_WEBHOOK_PUBLIC_KEY" in lines[1]
    assert "2 problems" in result.stderr


@pytest.mark.parametrize(
    ("setting", "value", "says"),
    [
        ("NEWSLETTER_TRANSPORT", "file", "nobody gets email"),
        ("NEWSLETTER_TRANSPORT", "pigeon", "pigeon"),
        ("NEWSLETTER_BASE_URL", "http://127.0.0.1:8799", "points at this machine"),
        ("NEWSLETTER_BASE_URL", "http://localhost", "points at this machine"),
        ("NEWSLETTER_BASE_URL", "http://digest.example.org", "https"),
        ("NEWSLETTER_BASE_URL", "digest.example.org", "not an http(s) URL"),
        ("NEWSLETTER_FROM", "Paper Digest <digest@localhost>", "your own domain"),
        ("NEWSLETTER_POSTAL_ADDRESS", " ", "postal address"),
        ("NEWSLETTER_SENDGRID_WEBHOOK_PUBLIC_KEY", "not-a-key", "not a public key"),
        ("NEWSLETTER_SENDGRID_SANDBOX", "true", "delivers none"),
    ],
)
def test_doctor_names_each_problem_and_the_setting_to_change(
    cli, live, monkeypatch, setting, value, says
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv(setting, value)
    result = cli("doctor", "--format", "json")
    assert result.exit_code == 1
    assert says in result.stdout


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # SQLite migrates itself
def test_doctor_sees_a_postgresql_schema_that_needs_an_upgrade(cli, live, database_url: str) -> None:  # type: ignore[no-untyped-def]
    import sqlalchemy as sa

    with sa.create_engine(database_url).begin() as connection:
        connection.execute(sa.text("DELETE FROM alembic_version"))
    result = cli("doctor")
    assert result.exit_code == 1 and "newsletter db upgrade" in result.stdout


def test_version_prints_the_installed_version(cli) -> None:  # type: ignore[no-untyped-def]
    from importlib.metadata import version

    result = cli("--version")
    assert result.exit_code == 0 and result.stdout.strip() == f"newsletter {version('newsletter')}"


def test_a_dry_run_fails_when_the_transport_could_not_send(cli, database_url: str, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("NEWSLETTER_TRANSPORT", "sendgrid")
    result = cli("send", "--dry-run")
    assert result.exit_code == 2
    assert result.stderr.startswith("Error:") and "NEWSLETTER_SENDGRID_API_KEY" in result.stderr


def test_send_confirmation_mails_pending_subscribers_their_link(
    cli, database_url: str, isolated_env: Path
) -> None:  # type: ignore[no-untyped-def]
    added = cli("subscribers", "add", "ada@example.org", "-i", "graph neural networks")
    assert "subscribers send-confirmation ada@example.org" in added.stderr  # the next step is named
    cli("subscribers", "add", "bob@example.org", "-i", "speech", "--confirmed")
    result = cli("subscribers", "send-confirmation")
    assert result.exit_code == 0 and "1 confirmation emails sent" in result.stderr
    [message] = outbox(isolated_env)
    assert message["To"] == "ada@example.org" and "/confirm/" in body_text(message)
    again = cli("subscribers", "send-confirmation", "bob@example.org")
    assert "bob@example.org is active, not pending" in again.stderr and len(outbox(isolated_env)) == 1


@pytest.mark.slow
def test_test_send_mails_one_readers_digest_to_the_operator_and_records_nothing(
    cli, database_url: str, isolated_env: Path
) -> None:  # type: ignore[no-untyped-def]
    assert cli("papers", "import", str(shared("data/papers-page.txt"))).exit_code == 0
    cli("subscribers", "add", "ada@example.org", "-i", "diffusion models, video generation", "--confirmed")
    result = cli("send", "--test-to", "ops@example.org")
    assert result.exit_code == 0, result.output
    assert "Sent ada@example.org's digest" in result.stderr
    [message] = outbox(isolated_env)
    assert message["To"] == "ops@example.org" and message["Subject"].startswith("[Test] ")
    assert message["List-Unsubscribe"] is None  # nobody is unsubscribed from a test
    assert "ada@example.org" not in body_text(message)
    assert '"due": 0' not in cli("send", "--dry-run", "--format", "json").stdout  # ada is still due
    assert cli("deliveries", "list", "--all", "--format", "json").stdout.strip() == "[]"
    bad = cli("send", "--test-to", "not an address")
    assert bad.exit_code == 2 and bad.stderr.startswith("Error:")


@pytest.mark.slow
def test_send_reports_progress_in_a_log(cli, database_url: str) -> None:  # type: ignore[no-untyped-def]
    assert cli("papers", "import", str(shared("data/papers-page.txt"))).exit_code == 0
    for name in ("ada", "grace"):
        cli(
            "subscribers",
            "add",
            f"{name}@example.org",
            "-i",
            "diffusion models",
            "--confirmed",
            "--hour",
            "0",
        )
    result = cli("send", "--date", "2026-11-27")
    assert result.exit_code == 0, result.output
    assert "sending digests: 2/2 (100%)" in result.stderr
