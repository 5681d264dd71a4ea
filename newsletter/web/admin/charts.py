"""The dashboard's charts: `jobs.metrics` tables drawn as SVG by pygal, on the server.

Server-side SVG needs no JavaScript, no CDN and no build step: the page shows each chart as an
`<img>` of its own URL, so the page's strict CSP stays as it is (an SVG shown as an image runs
no script; its response allows only its own inline styles). pygal's tooltip script is switched
off (`js=[]`). Colours read on the light and the dark theme alike, and the SVG follows the
reader's colour scheme through its own `prefers-color-scheme` rule.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date

import pygal
from pygal.style import Style
from sqlmodel import Session

from jobs import metrics
from jobs.metrics import Daily

#: Series colours: blue, red, purple, green, orange — distinguishable with common colour
#: blindness, and ≥ 3:1 against both the light and the dark card.
PALETTE = ("#0b57d0", "#c5221f", "#8250df", "#1a7f37", "#b25e00")
#: The SVG's own dark-mode rule (an SVG image cannot see the page's stylesheet).
_DARK = (
    "inline:@media (prefers-color-scheme: dark) {"
    " text, .title, .legends .legend text, .axis text { fill: #c9d1d9 !important; }"
    " .axis .guides line, .axis .line { stroke: #30363d !important; }"
    "}"
)
STYLE = Style(
    background="transparent",
    plot_background="transparent",
    foreground="#57606a",
    foreground_strong="#1f2328",
    foreground_subtle="#d0d7de",
    colors=PALETTE,
    font_family="system-ui, -apple-system, 'Segoe UI', Roboto, Arial, sans-serif",
    label_font_size=12,
    major_label_font_size=12,
    legend_font_size=13,
    title_font_size=15,
)


@dataclass(frozen=True)
class Chart:
    """One dashboard chart: its title, what it says in words, and how to build it."""

    name: str
    title: str
    description: str
    build: Callable[[Session, int, date], pygal.graph.graph.Graph]
    #: The numbers behind the chart, for the table under it (and for tests).
    data: Callable[[Session, int, date], list[dict[str, object]]]


#: Drawing sizes: the wide one for a desktop column, the narrow one for a phone (the same
#: font sizes on a smaller canvas stay readable when the image is scaled to the screen).
SIZES = {"wide": (720, 320), "narrow": (420, 340)}


def _base(kind: type[pygal.graph.graph.Graph], title: str, **options: object) -> pygal.graph.graph.Graph:
    return kind(
        title=title,
        style=STYLE,
        js=[],
        css=("file://style.css", "file://graph.css", _DARK),
        legend_at_bottom=True,
        legend_at_bottom_columns=3,
        show_minor_x_labels=False,
        truncate_legend=-1,
        truncate_label=-1,
        print_values=False,
        margin=10,
        margin_bottom=16,
        **options,
    )


def _day_labels(days: Sequence[date]) -> list[str]:
    return [f"{d.day} {d:%b}" for d in days]


def _daily(
    kind: type[pygal.graph.graph.Graph], title: str, table: Daily, **options: object
) -> pygal.graph.graph.Graph:
    chart = _base(kind, title, **options)
    labels = _day_labels(table.days)
    chart.x_labels = labels
    step = max(1, len(labels) // 8)
    chart.x_labels_major = labels[::step]
    for name, values in table.series.items():
        chart.add(name.replace("_", " "), values)
    return chart


def _table(
    function: Callable[[Session, int, date], Daily],
) -> Callable[[Session, int, date], list[dict[str, object]]]:
    return lambda session, days, today: function(session, days, today).rows()


def _papers(session: Session, days: int, today: date) -> pygal.graph.graph.Graph:
    table = metrics.papers_per_digest(session, days, today)
    chart = _base(pygal.Bar, "Papers per digest, and empty digests (%)")
    labels = _day_labels(table.days)
    chart.x_labels = labels
    chart.x_labels_major = labels[:: max(1, len(labels) // 8)]
    chart.add("papers per digest", table.series["papers"])
    chart.add("empty digests (%)", table.series["empty_percent"], secondary=True)
    return chart


def _interests(session: Session, days: int, today: date) -> pygal.graph.graph.Graph:
    top = metrics.top_interests(session)
    chart = _base(pygal.HorizontalBar, "Top interests (readers)", show_legend=False)
    chart.x_labels = [label for label, _ in top]
    chart.add("readers", [count for _, count in top])
    return chart


CHARTS: dict[str, Chart] = {
    chart.name: chart
    for chart in (
        Chart(
            "digests",
            "Digests per day",
            "Digests sent, failed and skipped (nothing new, or missed) per digest date.",
            lambda s, d, t: _daily(pygal.StackedBar, "Digests per day", metrics.digests(s, d, t)),
            _table(metrics.digests),
        ),
        Chart(
            "events",
            "What the provider reported",
            "Delivered, opened, clicked, bounced and spam complaints per day, from the event webhook.",
            lambda s, d, t: _daily(pygal.Line, "Provider events per day", metrics.provider_events(s, d, t)),
            _table(metrics.provider_events),
        ),
        Chart(
            "subscribers",
            "Subscribers",
            "Addresses confirmed and readers who unsubscribed, per day.",
            lambda s, d, t: _daily(pygal.Bar, "Confirmed vs unsubscribed", metrics.subscribers(s, d, t)),
            _table(metrics.subscribers),
        ),
        Chart(
            "votes",
            "Votes",
            "“More like this” and “less like this” votes per day.",
            lambda s, d, t: _daily(pygal.StackedBar, "Votes per day", metrics.votes(s, d, t)),
            _table(metrics.votes),
        ),
        Chart(
            "papers",
            "Papers per digest",
            "The mean number of papers in a digest, and the share of digests with none, per digest date.",
            _papers,
            _table(metrics.papers_per_digest),
        ),
        Chart(
            "lag",
            "Dispatch lag",
            "Minutes from a digest's due time to its send: the median schedule's first send, and the worst send.",
            lambda s, d, t: _daily(pygal.Line, "Dispatch lag (minutes)", metrics.dispatch_lag(s, d, t)),
            _table(metrics.dispatch_lag),
        ),
        Chart(
            "interests",
            "Top interests",
            "The interest phrases most active readers share.",
            _interests,
            lambda s, d, t: [{"interest": label, "readers": n} for label, n in metrics.top_interests(s)],
        ),
    )
}


def render_svg(session: Session, name: str, days: int, today: date, size: str = "wide") -> str:
    """The chart `name` as an SVG document (KeyError for an unknown name or size)."""
    width, height = SIZES[size]
    chart = CHARTS[name].build(session, days, today)
    chart.width, chart.height = width, height
    if size == "narrow" and getattr(chart, "x_labels_major", None):
        labels = chart.x_labels or []
        chart.x_labels_major = labels[:: max(1, len(labels) // 4)]
    return str(chart.render(is_unicode=True))
