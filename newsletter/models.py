"""Imports every table module so `SQLModel.metadata` (and Alembic) sees the whole schema.

Add one line here for each new module that defines tables.
"""

from newsletter.delivery.models import Delivery, DeliveryItem
from newsletter.papers.models import Paper
from subscribers.models import Feedback, Subscriber

__all__ = ["Delivery", "DeliveryItem", "Feedback", "Paper", "Subscriber"]
