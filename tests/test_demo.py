"""`make demo` (python -m newsletter.cli.demo): the newcomer's first run, end to end, offline."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from newsletter.cli import demo

pytestmark = pytest.mark.slow  # embeds the sample papers with the real model


def test_the_demo_sends_every_demo_subscriber_a_digest_and_links_each_email(tmp_path: Path) -> None:
    home = tmp_path / "demo"
    home.mkdir()
    (home / "stale.txt").write_text("left from an earlier run")

    outcomes, index = demo.run(home)

    assert not (home / "stale.txt").exists(), "each run starts from a clean demo folder"
    assert [o.email for o in outcomes] == [email for email, _, _ in demo.DEMO_SUBSCRIBERS]
    assert all(o.status == "sent" and o.picked > 0 and o.top_pick != "—" for o in outcomes)
    assert len({o.top_pick for o in outcomes}) == len(outcomes), "different interests, different picks"
    links = re.findall(r'href="([^"]+)"', index.read_text())
    assert len(links) == len(outcomes)
    for link in links:
        page = (index.parent / link).read_text()
        assert "<html" in page.lower() and (index.parent / link).with_suffix(".eml").exists()
