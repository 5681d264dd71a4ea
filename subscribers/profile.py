"""Validation of what a subscriber tells us: address, interests, timezone, schedule.

Pure functions shared by the CLI, CSV import and the web form, so every door applies the
same rules and gives the same one-line messages. This is the only module that knows the
interest syntax (`author: Name` follows an author, `-topic` excludes one): everything else
reads interests through `read_interests`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from email_validator import EmailNotValidError, validate_email

from newsletter.errors import UserError

#: `author: Yann LeCun` follows an author; `-medical imaging` excludes a topic.
AUTHOR_PREFIX = "author:"
EXCLUDE_PREFIX = "-"

MAX_INTERESTS = 20
MAX_INTEREST_LENGTH = 100
MAX_INTERESTS_INPUT = 5_000
_SEPARATORS = re.compile(r"[,;\n\r]+")
_SPACES = re.compile(r"\s+")


def normalize_email(raw: str) -> str:
    """A validated, normalised address (no DNS look-ups), or a UserError saying why not.

    Addresses are kept in their ASCII form (an international domain as punycode) and
    non-ASCII local parts are refused: neither SendGrid nor plain SMTP can carry them.
    """
    candidate = (raw or "").strip()
    if not candidate:
        raise UserError("no email address given")
    if len(candidate) > 320:
        raise UserError("email address is longer than 320 characters")
    try:
        valid = validate_email(candidate, check_deliverability=False, allow_smtputf8=False)
        return valid.ascii_email or valid.normalized
    except EmailNotValidError as exc:
        raise UserError(f"invalid email address {candidate!r}: {exc}") from None


def email_key(email: str) -> str:
    """The case-insensitive identity of an address."""
    return email.casefold()


def parse_interests(raw: str | list[str]) -> list[str]:
    """Split interest phrases on commas, semicolons and new lines; trim; dedupe ignoring case.

    Phrases keep their prefixes (`author: …` follows an author, `-…` excludes a topic); at
    most MAX_INTERESTS phrases of at most MAX_INTEREST_LENGTH characters are accepted.
    """
    text = "\n".join(raw) if isinstance(raw, list) else (raw or "")
    if len(text) > MAX_INTERESTS_INPUT:
        raise UserError(f"interests are {len(text)} characters long; keep them under {MAX_INTERESTS_INPUT}")
    phrases: list[str] = []
    seen: set[str] = set()
    for part in _SEPARATORS.split(text):
        phrase = _SPACES.sub(" ", part).strip()
        if not phrase or phrase in {EXCLUDE_PREFIX, AUTHOR_PREFIX}:
            continue
        if len(phrase) > MAX_INTEREST_LENGTH:
            raise UserError(
                f"interest {phrase[:30]!r}… is {len(phrase)} characters; "
                f"keep each phrase under {MAX_INTEREST_LENGTH + 1}"
            )
        key = phrase.casefold()
        if key not in seen:
            seen.add(key)
            phrases.append(phrase)
    if not phrases:
        raise UserError('no interests given; pass phrases such as "graph neural networks, LoRA"')
    if len(phrases) > MAX_INTERESTS:
        raise UserError(f"{len(phrases)} interests given; at most {MAX_INTERESTS} phrases are allowed")
    return phrases


@dataclass(frozen=True)
class Interests:
    """Interest phrases sorted by kind: topics to match, authors to follow, topics to avoid."""

    topics: tuple[str, ...] = ()
    authors: tuple[str, ...] = ()
    excludes: tuple[str, ...] = ()


def read_interests(phrases: list[str]) -> Interests:
    """Sort already-validated interest phrases into topics, followed authors and exclusions."""
    topics: list[str] = []
    authors: list[str] = []
    excludes: list[str] = []
    for raw in phrases:
        text = " ".join(raw.split())
        if text.lower().startswith(AUTHOR_PREFIX):
            name = text[len(AUTHOR_PREFIX) :].strip()
            if name:
                authors.append(name)
        elif text.startswith(EXCLUDE_PREFIX):
            topic = text[len(EXCLUDE_PREFIX) :].strip()
            if topic:
                excludes.append(topic)
        elif text:
            topics.append(text)
    return Interests(tuple(topics), tuple(authors), tuple(excludes))


def author_interest(name: str) -> str:
    """The interest phrase that follows `name` (how a pick by a followed author is labelled)."""
    return f"{AUTHOR_PREFIX} {name}"


def followed_author(phrase: str) -> str | None:
    """The author an `author: Name` phrase follows, else None."""
    interests = read_interests([phrase])
    return interests.authors[0] if interests.authors else None


def validate_timezone(name: str) -> str:
    """An IANA timezone name such as Europe/Berlin, or a UserError."""
    name = (name or "").strip()
    if name not in available_timezones() and name != "UTC":
        raise UserError(f"unknown timezone {name!r}; use an IANA name such as Europe/Berlin")
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise UserError(f"unknown timezone {name!r}; use an IANA name such as Europe/Berlin") from None
    return name


def validate_hour(hour: int) -> int:
    """A send hour 0–23."""
    if not 0 <= hour <= 23:
        raise UserError(f"hour {hour} is outside 0–23")
    return hour


def validate_max_papers(count: int) -> int:
    """How many papers one email may hold (1–50)."""
    if not 1 <= count <= 50:
        raise UserError(f"max papers {count} is outside 1–50")
    return count


WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def parse_weekday(value: str | int) -> int:
    """0–6 or a day name (mon, Monday…) to 0 = Monday."""
    if isinstance(value, int) or str(value).isdigit():
        number = int(value)
        if 0 <= number <= 6:
            return number
    else:
        text = str(value).strip().lower()
        for index, day in enumerate(WEEKDAYS):
            if len(text) >= 3 and day.startswith(text):
                return index
    raise UserError(f"unknown weekday {value!r}; use monday…sunday or 0–6")
