"""The ranker seam: what any ranker receives and returns, and the registry that names them.

A ranker is pure: it gets the candidate papers (vectors, texts, bylines, prior), each
reader's `Profile`, the query vectors the edge looked up (`Queries`), per reader a cap, the
first candidate column that is new to them and the columns to leave out, and returns per
reader its `Choice`s best first, with the `Signals` their `signal` indices refer to (the
explanations read them). `service.rank` loads everything and explains; swapping the ranker
is one registry line plus `NEWSLETTER_RANKER`, so a second ranker can be benchmarked on the
very same inputs (`benchmarks/relevance.py`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING

from newsletter.registry import Registry

if TYPE_CHECKING:
    from newsletter.ranking.profiles import Profile
    from newsletter.ranking.ranker import Candidates, Choice, Queries, Signals


class Ranker(ABC):
    """Chooses each reader's papers from one candidate pool."""

    name: str

    @abstractmethod
    def rank(
        self,
        cands: Candidates,
        profiles: Sequence[Profile],
        queries: Queries,
        *,
        caps: Sequence[int],
        min_score: float,
        first_column: Sequence[int] | None = None,
        blocked: Sequence[Sequence[int]] | None = None,
    ) -> tuple[Signals, list[list[Choice]]]:
        """Per profile, its chosen papers best first (at most its cap, none below min_score
        unless by a followed author), and the signals the choices' `signal` indices name."""


RANKERS: Registry[type[Ranker]] = Registry(
    "ranker (NEWSLETTER_RANKER)", {"hybrid": "newsletter.ranking.ranker:HybridRanker"}
)


def get_ranker(name: str) -> Ranker:
    """A new instance of the ranker registered as `name`."""
    return RANKERS.load(name)()
