"""Turning submitted form fields into validated subscriber data.

The rules are the CLI's (`subscribers.profile`, `subscribers.service.build_create`); this
module only reads the raw strings, bounds their length and rejects control characters (which
no address, phrase or zone name contains, and PostgreSQL refuses as text). Every problem is
a UserError; `problems()` checks each field on its own, so the page can show every message at
once, beside its field, with the input kept.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from newsletter.errors import UserError
from subscribers import service
from subscribers.models import Frequency, SubscriberCreate, SubscriberUpdate
from subscribers.profile import (
    MAX_INTERESTS_INPUT,
    normalize_email,
    parse_interests,
    parse_weekday,
    validate_hour,
    validate_max_papers,
    validate_timezone,
)

#: Longest value kept from any field; longer input is cut before it is echoed back.
MAX_FIELD = MAX_INTERESTS_INPUT + 100
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

#: Interest phrases offered as one-click chips on the sign-up page.
EXAMPLE_INTERESTS = (
    "large language models",
    "diffusion models",
    "graph neural networks",
    "reinforcement learning",
    "retrieval-augmented generation",
    "LoRA fine-tuning",
    "speech recognition",
    "author: Yoshua Bengio",
)


def field(form: Mapping[str, object], name: str) -> str:
    """One submitted text field ('' when absent or not text), cut to MAX_FIELD characters."""
    value = form.get(name)
    return value[:MAX_FIELD] if isinstance(value, str) else ""


def _clean(label: str, value: str) -> str:
    if _CONTROL.search(value):
        raise UserError(f"{label} contains control characters; type it again")
    return value


def _short(label: str, value: str, limit: int) -> str:
    value = _clean(label, value.strip())
    if len(value) > limit:
        raise UserError(f"{label} is longer than {limit} characters")
    return value


def _whole_number(label: str, raw: str, default: int) -> int:
    text = raw.strip()
    if not text:
        return default
    if not text.isascii() or not text.isdigit() or len(text) > 4:
        raise UserError(f"{label} must be a whole number")
    return int(text)


def _frequency(raw: str) -> Frequency:
    try:
        return Frequency(raw.strip().lower() or "daily")
    except ValueError:
        raise UserError(f"unknown frequency {raw[:20]!r}; choose daily or weekly") from None


def _problems(checks: Mapping[str, Callable[[], object]]) -> dict[str, str]:
    """Run each field's check; field name → its message, for every field that fails."""
    found: dict[str, str] = {}
    for name, check in checks.items():
        try:
            check()
        except UserError as exc:
            message = exc.message
            found[name] = message[:1].upper() + message[1:] + ("" if message.endswith(".") else ".")
    return found


@dataclass(frozen=True)
class SignupInput:
    """The sign-up form as typed (kept to re-fill the form)."""

    email: str = ""
    interests: str = ""
    timezone: str = "UTC"
    frequency: str = "daily"
    max_papers: str = ""

    @classmethod
    def from_form(cls, form: Mapping[str, object]) -> SignupInput:
        """Read the raw fields of a submitted sign-up form."""
        return cls(
            email=field(form, "email"),
            interests=field(form, "interests"),
            timezone=field(form, "timezone") or "UTC",
            frequency=field(form, "frequency") or "daily",
            max_papers=field(form, "max_papers"),
        )

    def interest_list(self) -> list[str]:
        """Just the interests, validated (for the preview, which needs no address)."""
        return parse_interests(_clean("interests", self.interests))

    def max_papers_value(self) -> int:
        """The validated "max papers" (10 when left empty)."""
        return validate_max_papers(_whole_number("max papers", self.max_papers, 10))

    def problems(self) -> dict[str, str]:
        """Every field's problem at once (field name → message); empty when the form is valid."""
        return _problems(
            {
                "email": lambda: normalize_email(_clean("email address", self.email)),
                "interests": self.interest_list,
                "frequency": lambda: _frequency(self.frequency),
                "max_papers": self.max_papers_value,
                "timezone": lambda: validate_timezone(_short("timezone", self.timezone, 64)),
            }
        )

    def validate(self) -> SubscriberCreate:
        """The whole form as a pending SubscriberCreate, or the first UserError."""
        return service.build_create(
            _clean("email address", self.email),
            _clean("interests", self.interests),
            timezone=_short("timezone", self.timezone, 64),
            frequency=_frequency(self.frequency).value,
            max_papers=self.max_papers_value(),
        )


@dataclass(frozen=True)
class PreferencesInput:
    """The preferences form as typed."""

    interests: str
    frequency: str
    weekday: str
    send_hour: str
    timezone: str
    max_papers: str
    send_empty: bool

    @classmethod
    def from_form(cls, form: Mapping[str, object]) -> PreferencesInput:
        """Read the raw fields of a submitted preferences form."""
        return cls(
            interests=field(form, "interests"),
            frequency=field(form, "frequency"),
            weekday=field(form, "weekday"),
            send_hour=field(form, "send_hour"),
            timezone=field(form, "timezone"),
            max_papers=field(form, "max_papers"),
            send_empty=field(form, "send_empty") == "on",
        )

    def problems(self) -> dict[str, str]:
        """Every field's problem at once (field name → message); empty when the form is valid."""
        return _problems(
            {
                "interests": lambda: parse_interests(_clean("interests", self.interests)),
                "frequency": lambda: _frequency(self.frequency),
                "weekday": lambda: parse_weekday(_short("weekday", self.weekday, 12) or "0"),
                "send_hour": lambda: validate_hour(_whole_number("send hour", self.send_hour, 7)),
                "timezone": lambda: validate_timezone(_short("timezone", self.timezone, 64)),
                "max_papers": lambda: validate_max_papers(_whole_number("max papers", self.max_papers, 10)),
            }
        )

    def validate(self) -> SubscriberUpdate:
        """The changes as a SubscriberUpdate, or the first UserError."""
        return SubscriberUpdate(
            interests=parse_interests(_clean("interests", self.interests)),
            frequency=_frequency(self.frequency),
            weekday=parse_weekday(_short("weekday", self.weekday, 12) or "0"),
            send_hour=validate_hour(_whole_number("send hour", self.send_hour, 7)),
            timezone=validate_timezone(_short("timezone", self.timezone, 64)),
            max_papers=validate_max_papers(_whole_number("max papers", self.max_papers, 10)),
            send_empty=self.send_empty,
        )
