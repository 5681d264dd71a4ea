"""Headless Chromium for the browser tests: one set of flags, screenshots at two widths."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.requirements import ROOT, chromium

#: Where screenshots land (a folder per test module under it).
ARTIFACTS = ROOT / "test-artifacts"
#: A phone and a laptop.
WIDTHS = (375, 1280)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


def launch(playwright: Any) -> Any:
    """A headless Chromium (the system's; skips the test when there is none)."""
    return playwright.chromium.launch(executable_path=chromium(), args=CHROMIUM_ARGS, headless=True)


def shoot(page: Any, folder: Path, name: str, *, reload: bool = False) -> None:
    """Full-page screenshots of `page` at every width in WIDTHS: folder/name-WIDTH.png.

    `reload` loads the page again at each width, as a phone would (responsive images are
    chosen on load, not on resize)."""
    folder.mkdir(parents=True, exist_ok=True)
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        if reload:
            page.reload(wait_until="networkidle")
        page.screenshot(path=str(folder / f"{name}-{width}.png"), full_page=True)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One Chromium per test module."""
    chromium()  # skip before starting Playwright when there is no browser
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        instance = launch(pw)
        yield instance
        instance.close()
