"""The Paper table: one row per real paper, whichever sources reported it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Text
from sqlmodel import Field, SQLModel

from newsletter.dbtypes import JSONList, UTCDateTime, utcnow


class PaperBase(SQLModel):
    """Fields every paper record has, whichever source it came from."""

    source: str = Field(max_length=32, description="Source that first reported the paper.")
    source_id: str = Field(max_length=255, description="The paper's id at that source.")
    arxiv_id: str | None = Field(
        default=None, max_length=64, unique=True, index=True, description="arXiv id, no version."
    )
    arxiv_version: int | None = None
    title: str = Field(sa_type=Text)
    abstract: str = Field(default="", sa_type=Text)
    authors: list[str] = Field(default_factory=list, sa_type=JSONList)
    categories: list[str] = Field(default_factory=list, sa_type=JSONList)
    primary_category: str | None = Field(default=None, max_length=64)
    published_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    updated_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    url: str | None = Field(default=None, sa_type=Text)
    pdf_url: str | None = Field(default=None, sa_type=Text)
    upvotes: int | None = Field(default=None, description="Hugging Face upvotes (popularity).")


class Paper(PaperBase, table=True):
    """A stored paper. `title_key` deduplicates papers that have no arXiv id."""

    id: int | None = Field(default=None, primary_key=True)
    title_key: str = Field(max_length=512, index=True)
    title_raw: str = Field(default="", sa_type=Text, description="Title exactly as fetched.")
    abstract_raw: str = Field(default="", sa_type=Text, description="Abstract exactly as fetched.")
    links: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    first_seen_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    modified_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
