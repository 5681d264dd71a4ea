"""Every MJML email template passes the reference compiler (npm `mjml`) in strict mode."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from newsletter.digest.render import TEMPLATES
from tests.support.requirements import ROOT, node

pytestmark = pytest.mark.node

TEMPLATE_FILES = sorted(p for p in TEMPLATES.glob("*.mjml") if not p.name.startswith("_"))


def _mjml_cli() -> Path:
    node()
    cli = ROOT / ".tools" / "node_modules" / ".bin" / "mjml"
    if not cli.exists():
        pytest.skip(f"{cli} missing: run `make node-tools` (part of `make test`)")
    return cli


def _strict(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(_mjml_cli()), "-r", str(path), "--config.validationLevel=strict", "-s"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_there_are_digest_and_confirmation_templates() -> None:
    assert {p.name for p in TEMPLATE_FILES} >= {"digest.mjml", "confirmation.mjml"}


@pytest.mark.parametrize("template", TEMPLATE_FILES, ids=lambda p: p.name)
def test_template_passes_strict_reference_validation(template: Path) -> None:
    result = _strict(template)
    assert result.returncode == 0, result.stderr
    assert "<!doctype html>" in result.stdout.lower()
    assert "{% for item in items %}" in result.stdout or "confirm_url" in result.stdout


def test_the_reference_validator_rejects_an_illegal_attribute(tmp_path: Path) -> None:
    bad = tmp_path / "bad.mjml"
    bad.write_text(
        '<mjml><mj-body><mj-section><mj-column><mj-text colour="red">x</mj-text></mj-column></mj-section></mj-body></mjml>'
    )
    result = _strict(bad)
    assert result.returncode != 0
    assert "illegal" in result.stderr
