"""Rendering emails: MJML compiled once per process, then Jinja per subscriber.

Compiling MJML (layout tables, Outlook conditionals, CSS inlining) is the slow part and is
the same for every reader, so each template is compiled once with the PyPI `mjml` package
and the HTML it produces becomes a Jinja template; Jinja control flow sits in `<mj-raw>` so
the compile keeps it. Autoescape is on for HTML: a title such as `<script>` or `a & b` is text.
Each HTML template has a plain-text twin (`*.txt.j2`) rendered from the same context.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
from mjml import mjml_to_html

from newsletter.digest.context import DigestItem, confirmation_context, digest_context
from newsletter.papers.models import Paper
from newsletter.settings import Settings
from subscribers.models import Subscriber

TEMPLATES = Path(__file__).resolve().parents[2] / "templates" / "email"

#: How many times each MJML template was compiled in this process (the benchmark reports it).
COMPILE_COUNTS: Counter[str] = Counter()
_compile_lock = threading.Lock()

#: Gmail clips a message whose HTML is larger than this.
GMAIL_CLIP_BYTES = 102 * 1024

_INCLUDE = re.compile(r'<mj-include\s+path="([^"]+)"\s*/>')


@dataclass(frozen=True)
class RenderedEmail:
    """One email's content, ready to become a MIME message."""

    subject: str
    preheader: str
    html: str
    text: str


def _inline_head_includes(source: str, folder: Path) -> str:
    """Inline includes that are whole `<mjml>` documents (our shared `<mj-head>`).

    The Python `mjml` package only follows includes inside `<mj-body>`; npm `mjml` follows
    both, so the same template file validates there and compiles here.
    """

    def replace(match: re.Match[str]) -> str:
        text = (folder / match.group(1)).read_text(encoding="utf-8")
        if "<mjml" not in text:
            return match.group(0)
        return re.sub(r"</?mjml[^>]*>", "", text)

    return _INCLUDE.sub(replace, source)


def compile_mjml(name: str) -> str:
    """MJML → HTML with CSS inlined (uncached; `html_template` caches per process)."""
    path = TEMPLATES / name
    source = _inline_head_includes(path.read_text(encoding="utf-8"), path.parent)
    result = mjml_to_html(source, template_dir=str(path.parent))
    if result.errors:
        raise RuntimeError(f"MJML errors in {name}: {result.errors}")
    COMPILE_COUNTS[name] += 1
    # Whitespace runs that contain a newline render as one space: keeping a single newline
    # is equivalent and keeps 20-paper digests well under Gmail's clipping limit.
    return re.sub(r"\n\s+", "\n", result.html)


@cache
def _environment(autoescape: bool) -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=autoescape,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )


@cache
def _html_template_locked(name: str) -> jinja2.Template:
    return _environment(True).from_string(compile_mjml(name))


def html_template(name: str) -> jinja2.Template:
    """The Jinja template made from `name`'s compiled MJML, compiled once per process."""
    with _compile_lock:
        return _html_template_locked(name)


def _render(stem: str, context: dict[str, Any]) -> RenderedEmail:
    html = html_template(f"{stem}.mjml").render(context)
    text = _environment(False).get_template(f"{stem}.txt.j2").render(context)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return RenderedEmail(subject=context["subject"], preheader=context["preheader"], html=html, text=text)


def render_digest(
    settings: Settings,
    subscriber: Subscriber,
    items: Sequence[DigestItem],
    *,
    digest_date: date,
    trending: Sequence[Paper] = (),
) -> RenderedEmail:
    """One subscriber's digest for `digest_date` (items in rank order)."""
    return _render(
        "digest",
        digest_context(settings, subscriber, items, digest_date=digest_date, trending=trending),
    )


def render_confirmation(settings: Settings, subscriber: Subscriber) -> RenderedEmail:
    """The double-opt-in email with the signed confirmation link."""
    return _render("confirmation", confirmation_context(settings, subscriber))
