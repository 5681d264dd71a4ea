"""Signed link tokens: scoped to a purpose, expiring, tamper-evident, free of addresses."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest

from newsletter.settings import Settings
from newsletter.tokens import MAX_AGE, Purpose, TokenError, link, make_token, read_token


def test_token_round_trips_for_its_purpose_only() -> None:
    settings = Settings()
    token = make_token(settings, Purpose.FEEDBACK, 42, paper=7)
    data = read_token(settings, Purpose.FEEDBACK, token)
    assert data.subscriber_id == 42 and data.extra == {"paper": 7}
    with pytest.raises(TokenError):
        read_token(settings, Purpose.UNSUBSCRIBE, token)


def test_tampered_token_and_other_secret_are_rejected(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    settings = Settings()
    token = make_token(settings, Purpose.UNSUBSCRIBE, 1)
    with pytest.raises(TokenError):
        read_token(settings, Purpose.UNSUBSCRIBE, token[:-2] + ("AA" if token[-2:] != "AA" else "BB"))
    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", "another")
    with pytest.raises(TokenError):
        read_token(Settings(), Purpose.UNSUBSCRIBE, token)


def test_unsubscribe_links_work_for_at_least_60_days_and_confirm_links_expire() -> None:
    settings = Settings()
    assert MAX_AGE[Purpose.UNSUBSCRIBE] >= timedelta(days=60)
    token = make_token(settings, Purpose.UNSUBSCRIBE, 5)
    later = datetime.now(UTC) + timedelta(days=61)
    assert read_token(settings, Purpose.UNSUBSCRIBE, token, now=later).subscriber_id == 5
    confirm = make_token(settings, Purpose.CONFIRM, 5)
    with pytest.raises(TokenError) as info:
        read_token(settings, Purpose.CONFIRM, confirm, now=datetime.now(UTC) + timedelta(days=4))
    assert info.value.expired and info.value.subscriber_id == 5


def test_links_hold_no_address() -> None:
    url = link(Settings(), Purpose.PREFERENCES, 3)
    token = url.rsplit("/", 1)[1]
    decoded = base64.urlsafe_b64decode(token.split(".")[0] + "==")
    assert b"@" not in decoded and url.startswith("http://127.0.0.1:8000/preferences/")
