"""Interest phrases, addresses, timezones: the rules every door applies."""

from __future__ import annotations

import pytest

from newsletter.errors import UserError
from subscribers.profile import normalize_email, parse_interests, parse_weekday, validate_timezone


def test_interests_split_on_commas_semicolons_newlines_and_dedupe_ignoring_case() -> None:
    assert parse_interests("graph neural networks,  LoRA;lora\n speech   enhancement ") == [
        "graph neural networks", "LoRA", "speech enhancement",
    ]  # fmt: skip


def test_author_and_exclusion_phrases_are_kept_verbatim() -> None:
    assert parse_interests("author: Yann LeCun, -medical imaging") == [
        "author: Yann LeCun", "-medical imaging",
    ]  # fmt: skip


@pytest.mark.parametrize(
    "raw", ["", " ,;\n", "-", "x" * 101, ",".join(str(i) for i in range(21)), "a," * 3000]
)
def test_unusable_interests_are_refused(raw: str) -> None:
    with pytest.raises(UserError):
        parse_interests(raw)


def test_email_is_normalised_without_dns() -> None:
    assert normalize_email("  Ada@EXAMPLE.org ") == "Ada@example.org"
    with pytest.raises(UserError, match="invalid email"):
        normalize_email("ada@@example.org")


def test_timezone_and_weekday_validation() -> None:
    assert validate_timezone("Asia/Tokyo") == "Asia/Tokyo"
    with pytest.raises(UserError):
        validate_timezone("Europe/Atlantis")
    assert parse_weekday("Fri") == 4 and parse_weekday(6) == 6
    with pytest.raises(UserError):
        parse_weekday("someday")


def test_addresses_are_kept_in_ascii_form_that_every_transport_can_carry() -> None:
    assert normalize_email("ada@münchen.de") == "ada@xn--mnchen-3ya.de"
    with pytest.raises(UserError, match="before the @-sign"):
        normalize_email("¡@example.org")
