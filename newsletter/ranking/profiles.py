"""A subscriber's interests read as signals: phrases, followed authors, exclusions, votes.

`author: Yann LeCun` follows an author; `-medical imaging` excludes a topic; every other
phrase is an interest. Liked and disliked papers (votes) are signals too.
"""

from __future__ import annotations

from dataclasses import dataclass, field

AUTHOR_PREFIX = "author:"


@dataclass(frozen=True)
class Profile:
    """One person's signals, ready for scoring (paper ids refer to stored papers)."""

    phrases: tuple[str, ...] = ()
    authors: tuple[str, ...] = ()
    excludes: tuple[str, ...] = ()
    liked: tuple[int, ...] = ()
    disliked: tuple[int, ...] = ()
    extra: dict[str, object] = field(default_factory=dict, compare=False)

    @property
    def empty(self) -> bool:
        """Nothing to rank by: the person gets no picks."""
        return not (self.phrases or self.authors or self.liked)


def parse_profile(
    interests: list[str], liked: tuple[int, ...] = (), disliked: tuple[int, ...] = ()
) -> Profile:
    """Sort already-validated interest phrases into interests, authors and exclusions."""
    phrases: list[str] = []
    authors: list[str] = []
    excludes: list[str] = []
    for raw in interests:
        text = " ".join(raw.split())
        if text.lower().startswith(AUTHOR_PREFIX):
            name = text[len(AUTHOR_PREFIX) :].strip()
            if name:
                authors.append(name)
        elif text.startswith("-"):
            topic = text[1:].strip()
            if topic:
                excludes.append(topic)
        elif text:
            phrases.append(text)
    return Profile(tuple(phrases), tuple(authors), tuple(excludes), tuple(liked), tuple(disliked))
