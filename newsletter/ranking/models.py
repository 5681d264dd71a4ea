"""Stored vectors: one per (paper, model) and one per (interest phrase, model).

Vectors are raw little-endian float32 bytes with their length and a checksum, so a truncated,
corrupted or foreign-size vector is detected on load and re-embedded instead of being used.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import LargeBinary, String, UniqueConstraint
from sqlmodel import Field, SQLModel

from newsletter.dbtypes import UTCDateTime, utcnow


class PaperEmbedding(SQLModel, table=True):
    """The vector of a paper's cleaned title and abstract under one model."""

    __table_args__ = (UniqueConstraint("paper_id", "model"),)

    id: int | None = Field(default=None, primary_key=True)
    paper_id: int = Field(foreign_key="paper.id", ondelete="CASCADE", index=True)
    model: str = Field(max_length=255, index=True)
    dim: int
    vector: bytes = Field(sa_type=LargeBinary)
    checksum: str = Field(max_length=16, description="blake2b-64 of the vector bytes.")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class PhraseEmbedding(SQLModel, table=True):
    """The vector of one interest phrase (case-folded) under one model; shared by everyone."""

    __table_args__ = (UniqueConstraint("phrase", "model"),)

    id: int | None = Field(default=None, primary_key=True)
    phrase: str = Field(sa_type=String(512))
    model: str = Field(max_length=255)
    dim: int
    vector: bytes = Field(sa_type=LargeBinary)
    checksum: str = Field(max_length=16)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
