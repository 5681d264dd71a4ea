"""Outside programs some tests need, and the rule for when they are missing.

On a user's machine a missing program skips the test with a visible reason. Under
NEWSLETTER_TEST_STRICT=1 (set by .ci/run, which installs everything) any skip fails the run:
see the hook in tests/conftest.py.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("NEWSLETTER_SHARED", ROOT.parent / "shared"))
STRICT = os.environ.get("NEWSLETTER_TEST_STRICT") == "1"


def postgres_url() -> str:
    """The admin URL of a test PostgreSQL server, or skip."""
    url = os.environ.get("NEWSLETTER_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("PostgreSQL not available: set NEWSLETTER_TEST_POSTGRES_URL (scripts/start-postgres)")
    return url


def chromium() -> str:
    """Path of a headless Chromium, or skip."""
    path = os.environ.get("NEWSLETTER_CHROMIUM", "/usr/bin/chromium")
    if not Path(path).exists():
        pytest.skip(f"Chromium not found at {path}: apt-get install -y chromium")
    return path


def node() -> str:
    """Path of Node.js, or skip."""
    path = shutil.which("node")
    if not path:
        pytest.skip("Node.js not found: needed for the reference MJML compiler")
    return path


def shared(relative: str) -> Path:
    """A file from ../shared, or skip when the shared folder is not beside the checkout."""
    path = SHARED / relative
    if not path.exists():
        pytest.skip(f"{path} not found: the shared data folder must sit beside the checkout")
    return path
