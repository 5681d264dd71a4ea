"""A subscriber's signals for scoring: topic phrases, followed authors, exclusions, votes.

The interest syntax is `subscribers.profile`'s; this module only adds the votes (liked and
disliked papers), which are signals too.
"""

from __future__ import annotations

from dataclasses import dataclass

from subscribers.profile import read_interests


@dataclass(frozen=True)
class Profile:
    """One person's signals, ready for scoring (paper ids refer to stored papers)."""

    phrases: tuple[str, ...] = ()
    authors: tuple[str, ...] = ()
    excludes: tuple[str, ...] = ()
    liked: tuple[int, ...] = ()
    disliked: tuple[int, ...] = ()

    @property
    def empty(self) -> bool:
        """Nothing to rank by: the person gets no picks."""
        return not (self.phrases or self.authors or self.liked)


def profile_for(interests: list[str], liked: tuple[int, ...] = (), disliked: tuple[int, ...] = ()) -> Profile:
    """The signals of already-validated interest phrases and a person's votes."""
    parsed = read_interests(interests)
    return Profile(parsed.topics, parsed.authors, parsed.excludes, tuple(liked), tuple(disliked))
