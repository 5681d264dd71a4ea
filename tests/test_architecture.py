"""The house has floors: a room imports only rooms below it (docs/architecture.md).

The floors are the `floors` layers contract of import-linter in pyproject.toml; these tests
run it on the code, show that it catches an upward import, and make sure no module escapes it
by living outside every floor.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _contract() -> dict:  # type: ignore[type-arg]
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    (contract,) = config["tool"]["importlinter"]["contracts"]
    return contract  # type: ignore[no-any-return]


def _lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=root, env=env, capture_output=True, text=True, timeout=300
    )


def _modules(package: str) -> list[str]:
    found = []
    for path in sorted((ROOT / package).rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        found.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return found


def test_no_room_imports_a_room_above_it() -> None:
    result = _lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "A room imports only rooms below it KEPT" in result.stdout


def test_an_upward_import_breaks_the_build(tmp_path: Path) -> None:
    for package in ("newsletter", "subscribers", "jobs", "templates"):
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    service = tmp_path / "subscribers" / "service.py"
    service.write_text(service.read_text() + "\nfrom jobs import send  # an upward import\n")
    result = _lint_imports(tmp_path)
    assert result.returncode != 0
    assert "subscribers.service -> jobs.send" in result.stdout


def test_every_module_lives_on_a_floor() -> None:
    contract = _contract()
    rooms = [room.strip() for layer in contract["layers"] for room in layer.split("|")]
    roots = ("newsletter", "subscribers", "jobs", "templates")
    homeless = [
        module
        for package in roots
        for module in _modules(package)
        if module not in roots and not any(module == r or module.startswith(r + ".") for r in rooms)
    ]
    assert homeless == [], f"add these modules to a floor in pyproject.toml: {homeless}"


def test_the_floors_read_from_the_ground_up_as_the_data_flows() -> None:
    layers = [layer.split("|")[0].strip() for layer in reversed(_contract()["layers"])]
    order = [
        "newsletter.papers",
        "subscribers",
        "newsletter.ranking",
        "newsletter.digest",
        "newsletter.delivery",
        "jobs",
        "newsletter.cli",
    ]
    assert [room for room in layers if room in order] == order
