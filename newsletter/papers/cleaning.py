"""Pure text cleaning: HTML, TeX and whitespace out; Unicode kept.

Titles and abstracts arrive with hard line breaks (arXiv wraps at ~80 columns), TeX
(`\\'a`, `$\\boldsymbol{\\cdot}$`) and, from feeds, HTML. Digest readers and the embedding
model both want plain text. The raw text is stored beside the clean one, so a better
cleaner can always re-derive it.
"""

from __future__ import annotations

import html
import logging
import re
import unicodedata

from bs4 import BeautifulSoup
from pylatexenc import latexwalker
from pylatexenc.latex2text import LatexNodes2Text
from pylatexenc.macrospec import MacroSpec

#: pylatexenc logs a warning per odd macro use (`\\frac` missing an argument); the text is
#: still converted, and thousands of warnings per import would drown the real messages.
logging.getLogger("pylatexenc").setLevel(logging.ERROR)

_WHITESPACE = re.compile(r"\s+")
#: Only real tag names count as HTML, so `x<y and z>w` in an abstract stays as it is.
_HTML_TAG = re.compile(
    r"</?(?:p|br|hr|b|i|u|em|strong|a|sub|sup|span|div|ul|ol|li|code|pre|tt|small|img|"
    r"blockquote|h[1-6]|table|tr|td|th|font)\b[^<>]*>|<!--",
    re.IGNORECASE,
)
_TEX_HINT = re.compile(r"[\\$]")
#: Spans that are TeX: inline/display math, `{\\it …}` groups, macros with up to two levels
#: of braced arguments, and control symbols such as `\\'a`, `\\'{a}`, `\\%`.
_BRACED = r"\{(?:[^{}]|\{(?:[^{}]|\{[^{}]*\})*\})*\}"
_TEX_ISLAND = re.compile(
    r"\$\$.+?\$\$|(?<!\\)\$.+?(?<!\\)\$"
    rf"|\{{\\(?:[^{{}}]|{_BRACED})*\}}"
    rf"|\\[a-zA-Z]+\*?(?:\s*{_BRACED})*"
    r"|\\[^a-zA-Z](?:\{\w*\}|\w)?",
    re.S,
)
_UNESCAPED_PERCENT = re.compile(r"(?<!\\)%")
_UNESCAPED_DOLLAR = re.compile(r"(?<!\\)\$")
_TITLE_KEY_DROP = re.compile(r"[^\w]+")


#: Old-style font, size and spacing switches that carry no text.
_SWITCHES = frozenset(
    [
        "it",
        "bf",
        "rm",
        "sc",
        "sf",
        "tt",
        "em",
        "sl",
        "up",
        "md",
        "small",
        "large",
        "Large",
        "LARGE",
        "huge",
        "Huge",
        "normalsize",
        "footnotesize",
        "scriptsize",
        "tiny",
        "noindent",
        "relax",
        "displaystyle",
        "textstyle",
        "scriptstyle",
        "left",
        "right",
        "big",
        "Big",
        "bigl",
        "bigr",
        "Bigl",
        "Bigr",
        "nonumber",
        "limits",
        "nolimits",
        "mathstrut",
        "strut",
    ]
)


class _TextOnly(LatexNodes2Text):
    """pylatexenc's converter, but an unknown macro keeps its name instead of vanishing.

    Abstracts use author-defined macros (`\\HyperRouter`, `\\ppbar`); dropping them loses
    words. Font and spacing switches (`\\it`, `\\bf`) vanish; an unknown macro with a braced
    argument (`\\boldsymbol{x}`) keeps the argument.
    """

    def macro_node_to_text(self, node):
        if self.latex_context.get_macro_spec(node.macroname) is not None:
            return super().macro_node_to_text(node)
        args = [a for a in (node.nodeargd.argnlist if node.nodeargd else []) if a is not None]
        if args:
            return "".join(self._groupnodecontents_to_text(a) for a in args)
        if node.macroname in _SWITCHES:
            return ""
        return node.macroname + node.macro_post_space


_LATEX = _TextOnly(math_mode="text", strict_latex_spaces=False)
#: Style macros common in titles that the default parser does not know take an argument.
_WALKER_CONTEXT = latexwalker.get_default_latex_context_db()
_WALKER_CONTEXT.add_context_category(
    "newsletter",
    macros=[MacroSpec(name, "{") for name in ("boldsymbol", "bm", "pmb", "mathbbm")],
    prepend=True,
)


def collapse_whitespace(text: str) -> str:
    """Join hard-wrapped lines and runs of spaces into single spaces."""
    return _WHITESPACE.sub(" ", text).strip()


def strip_html(text: str) -> str:
    """Plain text of an HTML fragment (feeds put `<p>` in descriptions); entities decoded."""
    if _HTML_TAG.search(text):
        text = BeautifulSoup(text, "html.parser").get_text(" ")
    return html.unescape(text)


def _convert_island(match: re.Match[str]) -> str:
    island = _UNESCAPED_PERCENT.sub(r"\\%", match.group())
    try:
        return _LATEX.latex_to_text(island, latex_context=_WALKER_CONTEXT)
    except Exception:  # pylatexenc raises assorted errors on odd input; keep the text
        return match.group()


def tex_to_text(text: str) -> str:
    """Readable Unicode for common TeX: accents, symbols, math kept as `x^2`.

    Only the TeX islands (math, macros, accent groups) go through pylatexenc: parsing whole
    abstracts is ~100x slower, and text outside TeX (`50%`, `--`, a lone `$5`) must stay as
    written. An odd number of `$` means they are prices, not math.
    """
    if not _TEX_HINT.search(text):
        return text
    if len(_UNESCAPED_DOLLAR.findall(text)) % 2:
        text = _UNESCAPED_DOLLAR.sub(r"\\$", text)
    return _TEX_ISLAND.sub(_convert_island, text)


def clean_text(text: str | None) -> str:
    """The display form of a title or abstract: no HTML, no TeX, single spaces."""
    if not text:
        return ""
    return collapse_whitespace(tex_to_text(strip_html(text)))


def title_key(title: str) -> str:
    """Identity of a paper without an arXiv id: case, accents and punctuation ignored."""
    decomposed = unicodedata.normalize("NFKD", clean_text(title).casefold())
    letters = "".join(c for c in decomposed if not unicodedata.combining(c))
    return collapse_whitespace(_TITLE_KEY_DROP.sub(" ", letters).replace("_", " "))[:512]
