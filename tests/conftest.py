"""Fixtures shared by the whole suite: an isolated data folder, real databases, the CLI.

Every database test runs twice, on a SQLite file and on a real PostgreSQL server (a fresh
database per test), through the `database_url` fixture.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlmodel import Session
from typer.testing import CliRunner

from newsletter.cli import app
from newsletter.db import engine_for, open_database, upgrade
from newsletter.settings import Settings
from tests.support.requirements import STRICT, postgres_url

#: Shared fixtures (the web app, the loopback SendGrid server) for every test module.
pytest_plugins = ["tests.support.web", "tests.support.sendgrid_server"]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Under NEWSLETTER_TEST_STRICT=1 a skipped test is a failed test: CI never skips."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if STRICT and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped under NEWSLETTER_TEST_STRICT=1, where nothing may skip: {reason}"


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test gets its own data folder and working directory, and no stray settings."""
    for name in list(os.environ):
        kept = name.startswith("NEWSLETTER_TEST_") or name in {"NEWSLETTER_SHARED", "NEWSLETTER_CHROMIUM"}
        if name.startswith("NEWSLETTER_") and not kept:
            monkeypatch.delenv(name)
    monkeypatch.delenv("SENDGRID_API_KEY", raising=False)
    home = tmp_path / "var"
    monkeypatch.setenv("NEWSLETTER_HOME", str(home))
    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", "test-secret-key-" + uuid.uuid4().hex)
    monkeypatch.chdir(tmp_path)
    return home


def _postgres_database() -> Iterator[str]:
    admin_url = postgres_url()
    name = f"nl_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        engine_for(url).dispose()
        engine_for.cache_clear()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """A migrated, empty database of each kind; also set as NEWSLETTER_DATABASE_URL."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'test.db'}"
        monkeypatch.setenv("NEWSLETTER_DATABASE_URL", url)
        upgrade(engine_for(url))
        yield url
        engine_for(url).dispose()
        return
    for url in _postgres_database():
        monkeypatch.setenv("NEWSLETTER_DATABASE_URL", url)
        upgrade(engine_for(url))
        yield url


@pytest.fixture
def settings(database_url: str) -> Settings:
    """Settings as the CLI would read them for this test."""
    return Settings()


@pytest.fixture
def engine(settings: Settings) -> Engine:
    """The migrated engine of the test database."""
    return open_database(settings)


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session on the test database (commit explicitly to make data visible to the CLI)."""
    with Session(engine, expire_on_commit=False) as s:
        yield s


CliResult = Callable[..., "object"]


@pytest.fixture
def cli() -> Callable[..., object]:
    """Run the real `newsletter` CLI in-process: cli("subscribers", "list", "--format", "json")."""
    runner = CliRunner()

    def run(*args: str, input: str | None = None):  # type: ignore[no-untyped-def]
        return runner.invoke(app, list(args), input=input, catch_exceptions=False)

    return run
