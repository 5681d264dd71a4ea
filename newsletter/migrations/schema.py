"""Imports every table module so `SQLModel.metadata` (and Alembic) sees the whole schema.

Add one line here for each new module that defines tables.
"""

from jobs.lease import Lease
from newsletter.delivery.events import MailEvent
from newsletter.delivery.models import ConfirmationEmail, Delivery, DeliveryItem
from newsletter.operators import Operator
from newsletter.papers.models import Paper
from newsletter.ranking.models import PaperEmbedding, PhraseEmbedding
from subscribers.models import Feedback, Subscriber

__all__ = [
    "ConfirmationEmail",
    "Delivery",
    "DeliveryItem",
    "Feedback",
    "Lease",
    "MailEvent",
    "Operator",
    "Paper",
    "PaperEmbedding",
    "PhraseEmbedding",
    "Subscriber",
]
