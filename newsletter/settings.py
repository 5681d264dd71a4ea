"""All configuration in one pydantic-settings class.

Every setting is a `NEWSLETTER_*` environment variable (or a line in `.env`). Secrets are
`SecretStr`, so they print as `**********` in reprs, logs, errors and `config show`.
"""

from __future__ import annotations

import secrets
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

SECRET_KEY_FILE = "secret_key"

CommaList = Annotated[list[str], NoDecode]


def _split_commas(value: object) -> object:
    """Accept `a, b ,c` in an environment variable as well as a real list."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    """The effective configuration of one process; see README "Configuration"."""

    model_config = SettingsConfigDict(
        env_prefix="NEWSLETTER_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    # --- core -----------------------------------------------------------------------
    home: Path = Field(Path("var"), description="Data folder: SQLite file, outbox, secret key.")
    database_url: str | None = Field(None, description="SQLAlchemy URL; default is a SQLite file in HOME.")
    base_url: str = Field(
        "http://127.0.0.1:8000", description="Public URL of the web app; builds every link."
    )
    from_address: str = Field(
        "Paper Digest <digest@localhost>",
        validation_alias=AliasChoices("NEWSLETTER_FROM", "NEWSLETTER_FROM_ADDRESS"),
        description="From header of every email.",
    )
    reply_to: str | None = Field(None, description="Reply-To header; default none.")
    secret_key: SecretStr | None = Field(
        None, description="Signs links; generated into HOME/secret_key when unset."
    )
    postal_address: str | None = Field(None, description="Postal address shown in the footer.")
    list_id: str = Field("paper-digest.localhost", description="List-Id header value.")

    # --- embeddings and ranking -------------------------------------------------------
    embedding_model: str = Field(
        "",
        description="sentence-transformers name or folder; default the packaged all-MiniLM-L6-v2.",
    )
    embedding_device: str = Field("auto", description="auto, cpu or cuda.")
    embedding_batch_size: int = Field(64, ge=1, le=4096)
    min_score: float = Field(0.35, description="Papers scoring below this are never picked.")
    ranker: str = Field(
        "hybrid", description="Which registered ranker picks papers (newsletter/ranking/base.py)."
    )
    candidate_window_days: int = Field(
        7, ge=1, description="First digest looks back this many days for candidates."
    )

    # --- sources ----------------------------------------------------------------------
    sources: CommaList = Field(
        ["arxiv-listing", "hf-daily"], description="Sources `papers ingest` pulls by default."
    )
    arxiv_categories: CommaList = Field(["cs.LG", "cs.CL", "cs.CV", "cs.AI"])
    arxiv_api_url: str = "https://export.arxiv.org/api/query"
    arxiv_rss_url: str = "https://rss.arxiv.org/rss"
    arxiv_delay_seconds: float = Field(3.0, ge=0, description="Pause between arXiv API calls.")
    hf_api_url: str = "https://huggingface.co/api/daily_papers"
    rss_feeds: CommaList = Field([], description="Extra RSS/Atom feed URLs.")
    http_timeout: float = Field(30.0, gt=0)
    http_retries: int = Field(4, ge=0)
    http_backoff_seconds: float = Field(
        2.0, ge=0, description="First retry waits this long; each further retry doubles it."
    )

    # --- delivery ---------------------------------------------------------------------
    transport: str = Field(
        "file", description="file, smtp or sendgrid (newsletter/delivery/transports/__init__.py)."
    )
    smtp_host: str = "localhost"
    smtp_port: int = 25
    smtp_security: Literal["none", "starttls", "ssl"] = "none"
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    sendgrid_api_key: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("NEWSLETTER_SENDGRID_API_KEY", "SENDGRID_API_KEY"),
    )
    sendgrid_host: str = "https://api.sendgrid.com"
    sendgrid_sandbox: bool = False
    sendgrid_timeout: float = Field(30.0, gt=0)
    sendgrid_concurrency: int = Field(4, ge=1, le=64)
    sendgrid_categories: CommaList = Field(["digest"])
    sendgrid_webhook_public_key: SecretStr | None = None
    sendgrid_max_retries: int = Field(
        5, ge=0, description="Retries of one message after a 5xx or timeout before it fails."
    )
    sendgrid_backoff_seconds: float = Field(
        1.0, ge=0, description="First retry delay; doubles each retry, with jitter."
    )
    sendgrid_max_wait_seconds: float = Field(
        120.0, ge=0, description="Longest pause for one backoff or X-RateLimit-Reset wait."
    )
    unsubscribe_mailto: str | None = Field(
        None, description="mailto: address in List-Unsubscribe; default unsubscribe@FROM-domain."
    )
    in_flight_policy: Literal["resend", "mark-failed", "hold"] = Field(
        "resend",
        description=(
            "A digest whose answer was lost (in flight when a run died, or a timeout after the "
            "request went out): send it again (a rare duplicate), mark it failed (a rare miss), "
            "or hold it for `deliveries retry`."
        ),
    )
    in_flight_grace_seconds: float = Field(
        300.0,
        ge=0,
        description=(
            "How long a send run's claim on a message outlives its last heartbeat (every third "
            "of this; 1 s at least): only a `sending` digest whose claim expired is taken over."
        ),
    )
    confirmations_per_day: int = Field(
        3, ge=1, description="Most confirmation emails one address gets per day."
    )

    # --- scheduler (jobs/) ------------------------------------------------------------
    dispatch_every_minutes: int = Field(
        5, ge=1, le=60, description="How often the dispatch job looks for digests that are due."
    )
    dispatch_grace_minutes: int = Field(
        120,
        ge=1,
        description="A digest not sent this long after its send time is recorded as missed.",
    )
    ingest_every_hours: int = Field(
        3, ge=1, le=24, description="Hours between ingests (plus one after arXiv announces)."
    )
    scheduler_lease_seconds: int = Field(
        90, ge=10, description="A scheduler that stops renewing its lease this long is replaced."
    )

    # --- web ------------------------------------------------------------------------------
    signup_limit_per_ip: str = Field(
        "10/hour;50/day", description="Sign-up form posts per client IP (limits syntax)."
    )
    signup_limit_per_address: str = Field(
        "3/hour;5/day", description="Sign-up requests per email address (limits syntax)."
    )
    preview_limit_per_ip: str = Field(
        "60/hour", description="Sign-up previews (a ranking run each) per client IP."
    )
    public_archive: bool = Field(
        False, description="Publish each day's trending papers at /trending (no reader data)."
    )
    admin_login_limit_per_ip: str = Field(
        "10/minute;60/hour", description="Operator login attempts per client IP (limits syntax)."
    )

    _split = field_validator(
        "sources", "arxiv_categories", "rss_feeds", "sendgrid_categories", mode="before"
    )(_split_commas)

    @field_validator("base_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to `HOME/newsletter.db`."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'newsletter.db').resolve()}"

    @cached_property
    def signing_key(self) -> str:
        """The secret that signs tokens: the setting, else a key kept in HOME (made once)."""
        if self.secret_key is not None and self.secret_key.get_secret_value():
            return self.secret_key.get_secret_value()
        path = self.home / SECRET_KEY_FILE
        if path.exists():
            return path.read_text().strip()
        self.home.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        path.touch(mode=0o600)
        path.write_text(key)
        return key

    def masked(self) -> dict[str, object]:
        """Every setting as plain data with secrets masked (for `config show`)."""
        out: dict[str, object] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                out[name] = "**********" if value.get_secret_value() else ""
            elif isinstance(value, Path):
                out[name] = str(value)
            else:
                out[name] = value
        out["database_url"] = _mask_url_password(self.resolved_database_url)
        return out


def _mask_url_password(url: str) -> str:
    """Hide the password part of a database URL."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL is reported by the database layer later
        return url


def get_settings() -> Settings:
    """Read settings from the environment now (no global cache, so tests can change env)."""
    return Settings()
