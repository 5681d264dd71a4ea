"""Cleaning titles and abstracts, and the identities papers are matched on (pure functions)."""

from __future__ import annotations

import pytest

from newsletter.papers.cleaning import clean_text, title_key
from newsletter.papers.records import parse_arxiv_id


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        (r"ART$\boldsymbol{\cdot}$V: Auto-Regressive", "ART·V: Auto-Regressive"),
        (r"C. Bal\'azs and G\"odel", "C. Balázs and Gödel"),
        (r"the $(k,\ell)$-pebble game", "the (k,ℓ)-pebble game"),
        (r"scales as $x^2$ in $\mathbb{R}^n$", "scales as x^2 in ℝ^n"),
        (
            "Calculation of prompt diphoton production cross sections at Tevatron and\n  LHC energies",
            "Calculation of prompt diphoton production cross sections at Tevatron and LHC energies",
        ),
        (r"limits sigma(\ppbar\to ZH)", "limits sigma(ppbar→ ZH)"),
        (r"gains of \HyperRouter compared", "gains of HyperRouter compared"),
        (r"{\it Fermi} observations", "Fermi observations"),
        (r"accuracy of 88.02\% and 50% of", "accuracy of 88.02% and 50% of"),
        ("costs $5 per run", "costs $5 per run"),
        (
            "<p>We study <b>sparse</b> attention &amp; memory.</p>",
            "We study sparse attention & memory.",
        ),
        ("holds when x<y and z>w", "holds when x<y and z>w"),
        ("Über 日本語 — emoji 🚀 stay", "Über 日本語 — emoji 🚀 stay"),
        ("", ""),
    ],
)
def test_clean_text_turns_tex_html_and_line_breaks_into_plain_unicode(raw: str, clean: str) -> None:
    assert clean_text(raw) == clean


def test_title_key_ignores_case_accents_punctuation_and_tex() -> None:
    assert title_key("Zéro-Shot  Image Restoration!") == title_key("zero shot image restoration")
    assert title_key(r"ART$\boldsymbol{\cdot}$V: Video") == title_key("ART·V  video")
    assert title_key("Graph Neural Networks") != title_key("Graph Neural Network")


@pytest.mark.parametrize(
    ("text", "identity"),
    [
        ("http://arxiv.org/abs/2202.12139v1", ("2202.12139", 1)),
        ("https://arxiv.org/pdf/2202.12139v3", ("2202.12139", 3)),
        ("oai:arXiv.org:2609.26811v1", ("2609.26811", 1)),
        ("2607.07673", ("2607.07673", None)),
        ("http://arxiv.org/abs/astro-ph/0601001v1", ("astro-ph/0601001", 1)),
        ("math.GT/0309136", ("math.GT/0309136", None)),
        ("https://journal.example/articles/2202.12139", (None, None)),
        ("not an id", (None, None)),
        (None, (None, None)),
    ],
)
def test_the_arxiv_id_without_version_is_the_identity(text: str | None, identity: tuple) -> None:
    assert parse_arxiv_id(text) == identity
