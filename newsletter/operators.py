"""Operator accounts for the admin web app: created with the CLI, never by default.

Passwords are hashed with Argon2id (argon2-cffi, the Password Hashing Competition winner and
OWASP's first choice) and re-hashed on login when the library's parameters grow. Failed logins
are counted in the database, so the lock-out holds across restarts and web processes: after
`LOCK_AFTER` wrong passwords in a row an account refuses every password, the right one too,
for `LOCK_FOR`. `session_version` is part of every signed session cookie; bumping it (logout,
new password) ends every session of that operator at once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Text
from sqlmodel import Field, Session, SQLModel, col, select

from newsletter.dbtypes import UTCDateTime, utcnow
from newsletter.errors import UserError

#: Wrong passwords in a row before an account is locked, and for how long.
LOCK_AFTER = 5
LOCK_FOR = timedelta(minutes=15)
#: NIST SP 800-63B asks for at least 8; an operator can read every subscriber, so more.
MIN_PASSWORD = 12
MAX_PASSWORD = 1024
_NAME = re.compile(r"^[a-z0-9][a-z0-9._@-]{1,63}$")

_hasher = PasswordHasher()
#: Verified against when the name is unknown, so a wrong name costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash("not a password of anyone")


class Operator(SQLModel, table=True):
    """A person who may use the admin web app."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=64, unique=True, index=True, description="Login name, lower case.")
    password_hash: str = Field(sa_type=Text)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_login_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    failed_logins: int = Field(default=0, description="Wrong passwords since the last good one.")
    locked_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    session_version: int = Field(default=0, description="Bumped to end every session.")


@dataclass(frozen=True)
class OperatorPublic:
    """What `operators list` shows (never the hash)."""

    name: str
    created_at: datetime
    last_login_at: datetime | None
    locked_until: datetime | None


def normalise_name(name: str) -> str:
    """A login name as stored: trimmed, lower case; UserError when it cannot be one."""
    clean = name.strip().lower()
    if not _NAME.match(clean):
        raise UserError(
            f"operator name {name[:40]!r} must be 2–64 characters: letters, digits, . _ @ - "
            "(starting with a letter or digit)"
        )
    return clean


def check_password(password: str) -> str:
    """The password if it is long enough to protect every subscriber's data."""
    if len(password) < MIN_PASSWORD:
        raise UserError(f"the password must have at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise UserError(f"the password must have at most {MAX_PASSWORD} characters")
    return password


def find(session: Session, name: str) -> Operator | None:
    """The operator with this login name, if any."""
    return session.exec(select(Operator).where(Operator.name == name.strip().lower())).first()


def require(session: Session, name: str) -> Operator:
    """The operator with this login name; UserError naming the command that lists them."""
    found = find(session, name)
    if found is None:
        raise UserError(f"no operator named {name.strip().lower()!r}; see `newsletter operators list`")
    return found


def create(session: Session, name: str, password: str) -> Operator:
    """Add an operator (UserError if the name is taken or the password too short)."""
    clean = normalise_name(name)
    if find(session, clean) is not None:
        raise UserError(f"an operator named {clean!r} exists already")
    operator = Operator(name=clean, password_hash=_hasher.hash(check_password(password)))
    session.add(operator)
    session.flush()
    return operator


def set_password(session: Session, operator: Operator, password: str) -> None:
    """A new password: unlocks the account and ends its sessions."""
    operator.password_hash = _hasher.hash(check_password(password))
    operator.failed_logins = 0
    operator.locked_until = None
    operator.session_version += 1
    session.add(operator)
    session.flush()


def end_sessions(session: Session, operator: Operator) -> None:
    """Log the operator out everywhere (every signed cookie names the old version)."""
    operator.session_version += 1
    session.add(operator)
    session.flush()


def listing(session: Session) -> list[OperatorPublic]:
    """Every operator, by name."""
    return [
        OperatorPublic(o.name, o.created_at, o.last_login_at, o.locked_until)
        for o in session.exec(select(Operator).order_by(col(Operator.name)))
    ]


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def authenticate(session: Session, name: str, password: str, now: datetime | None = None) -> Operator | None:
    """The operator if `password` is theirs and the account is not locked; else None.

    Every failure looks the same to the caller (unknown name, wrong password, locked), so
    the login page cannot be used to find out which names exist. A locked account does not
    even check the password: guessing on while locked gains nothing.
    """
    now = now or utcnow()
    clean = name.strip().lower()[:64]
    operator = find(session, clean) if clean else None
    if operator is None:
        _verify(_DUMMY_HASH, password[:MAX_PASSWORD])
        return None
    if operator.locked_until is not None and operator.locked_until > now:
        return None
    if not _verify(operator.password_hash, password[:MAX_PASSWORD]):
        operator.failed_logins += 1
        if operator.failed_logins >= LOCK_AFTER:
            operator.locked_until = now + LOCK_FOR
            operator.failed_logins = 0
        session.add(operator)
        session.flush()
        return None
    if _hasher.check_needs_rehash(operator.password_hash):
        operator.password_hash = _hasher.hash(password)
    operator.failed_logins = 0
    operator.locked_until = None
    operator.last_login_at = now
    session.add(operator)
    session.flush()
    return operator
