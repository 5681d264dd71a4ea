"""`newsletter subscribers …` through the real CLI, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest


def _list_json(cli) -> list[dict]:  # type: ignore[no-untyped-def]
    result = cli("subscribers", "list", "--format", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_add_then_list_json_round_trips_every_field(cli, database_url) -> None:  # type: ignore[no-untyped-def]
    result = cli(
        "subscribers", "add", "Ada@Example.org",
        "--interests", "graph neural networks; LoRA\nspeech enhancement, lora",
        "--timezone", "Europe/Berlin", "--hour", "6", "--frequency", "weekly",
        "--weekday", "friday", "--max-papers", "5", "--send-empty", "--confirmed",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    [row] = _list_json(cli)
    assert row["email"] == "Ada@example.org"
    assert row["interests"] == ["graph neural networks", "LoRA", "speech enhancement"]
    assert (row["timezone"], row["send_hour"], row["frequency"], row["weekday"]) == (
        "Europe/Berlin", 6, "weekly", 4,
    )  # fmt: skip
    assert row["max_papers"] == 5 and row["send_empty"] is True
    assert row["status"] == "active" and row["confirmed_at"] and row["unsubscribed_at"] is None
    assert set(row) == {
        "id", "email", "interests", "timezone", "send_hour", "frequency", "weekday",
        "max_papers", "send_empty", "status", "created_at", "confirmed_at", "unsubscribed_at",
    }  # fmt: skip


def test_subscriber_without_confirmed_flag_is_pending(cli, database_url) -> None:  # type: ignore[no-untyped-def]
    assert cli("subscribers", "add", "bo@example.org", "-i", "LoRA").exit_code == 0
    [row] = _list_json(cli)
    assert row["status"] == "pending" and row["confirmed_at"] is None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["not-an-email", "-i", "LoRA"], "invalid email address"),
        (["a@example.org", "-i", " , ;"], "no interests given"),
        (["a@example.org", "-i", "LoRA", "--timezone", "Mars/Olympus"], "unknown timezone"),
        (["a@example.org", "-i", "LoRA", "--hour", "24"], "outside 0–23"),
        (["a@example.org", "-i", "x" * 101], "characters"),
        (["a@example.org", "-i", ",".join(f"t{i}" for i in range(21))], "at most 20"),
        (["a@example.org", "-i", "LoRA", "--frequency", "hourly"], "unknown frequency"),
    ],
)
def test_bad_input_exits_2_with_one_line_and_writes_nothing(cli, database_url, args, message) -> None:  # type: ignore[no-untyped-def]
    result = cli("subscribers", "add", *args)
    assert result.exit_code == 2
    error_lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(error_lines) == 1 and error_lines[0].startswith("Error: ")
    assert message in error_lines[0]
    assert _list_json(cli) == []


def test_duplicate_add_is_refused_case_insensitively_and_changes_nothing(cli, database_url) -> None:  # type: ignore[no-untyped-def]
    assert cli("subscribers", "add", "ada@example.org", "-i", "LoRA").exit_code == 0
    result = cli("subscribers", "add", "ADA@example.org", "-i", "diffusion")
    assert result.exit_code == 2 and "already subscribed" in result.stderr
    [row] = _list_json(cli)
    assert row["interests"] == ["LoRA"]


def test_edit_changes_only_given_fields(cli, database_url) -> None:  # type: ignore[no-untyped-def]
    cli("subscribers", "add", "ada@example.org", "-i", "LoRA", "--hour", "8")
    result = cli("subscribers", "edit", "ada@example.org", "-i", "diffusion, 5G", "--status", "paused")
    assert result.exit_code == 0, result.output
    [row] = _list_json(cli)
    assert row["interests"] == ["diffusion", "5G"] and row["status"] == "paused"
    assert row["send_hour"] == 8
    assert cli("subscribers", "edit", "ada@example.org").exit_code == 2
    assert cli("subscribers", "edit", "nobody@example.org", "--hour", "3").exit_code == 2


def test_unsubscribing_through_edit_records_when(cli, database_url) -> None:  # type: ignore[no-untyped-def]
    cli("subscribers", "add", "ada@example.org", "-i", "LoRA", "--confirmed")
    cli("subscribers", "edit", "ada@example.org", "--status", "unsubscribed")
    [row] = _list_json(cli)
    assert row["unsubscribed_at"] is not None


def test_remove_erases_the_person(cli, database_url) -> None:  # type: ignore[no-untyped-def]
    cli("subscribers", "add", "ada@example.org", "-i", "LoRA")
    cli("subscribers", "add", "bo@example.org", "-i", "LoRA")
    assert cli("subscribers", "remove", "ada@example.org", "--yes").exit_code == 0
    assert [r["email"] for r in _list_json(cli)] == ["bo@example.org"]
    assert cli("subscribers", "show", "ada@example.org").exit_code == 2


def test_import_commits_good_rows_and_reports_bad_ones_by_line(cli, database_url, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cli("subscribers", "add", "exists@example.org", "-i", "LoRA")
    path = tmp_path / "people.csv"
    path.write_text(
        "email,interests,timezone,send_hour,status\n"
        "ok1@example.org,graph neural networks; LoRA,Asia/Tokyo,7,active\n"
        "broken,LoRA,UTC,7,\n"
        "ok2@example.org,diffusion,UTC,9,\n"
        "exists@example.org,LoRA,UTC,7,\n"
        "tz@example.org,LoRA,Nowhere/City,7,\n"
        "ok1@example.org,LoRA,UTC,7,\n"
    )
    result = cli("subscribers", "import", str(path))
    assert result.exit_code == 0, result.output
    assert "line 3: rejected: invalid email address" in result.stderr
    assert "line 5: rejected: exists@example.org is already subscribed" in result.stderr
    assert "line 6: rejected: unknown timezone" in result.stderr
    assert "line 7: rejected: ok1@example.org appears twice" in result.stderr
    assert "2 added, 4 rejected" in result.stderr
    rows = {r["email"]: r for r in _list_json(cli)}
    assert set(rows) == {"exists@example.org", "ok1@example.org", "ok2@example.org"}
    assert rows["ok1@example.org"]["status"] == "active"
    assert rows["ok1@example.org"]["interests"] == ["graph neural networks", "LoRA"]


def test_import_dry_run_writes_nothing(cli, database_url, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "people.csv"
    path.write_text("email,interests\nok@example.org,LoRA\n")
    result = cli("subscribers", "import", str(path), "--dry-run")
    assert "1 would add, 0 rejected" in result.stderr
    assert _list_json(cli) == []


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"name,topics\nx,y\n", "must have an 'email' column"), (b"\xff\xfe\x00bad", "cannot read it")],
)
def test_unreadable_csv_exits_2_and_writes_nothing(
    cli, database_url, tmp_path: Path, content, message
) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    result = cli("subscribers", "import", str(path))
    assert result.exit_code == 2 and message in result.stderr
    assert cli("subscribers", "import", str(tmp_path / "missing.csv")).exit_code == 2
    assert _list_json(cli) == []


def test_export_csv_reimports_into_an_empty_instance(cli, database_url, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    cli(
        "subscribers",
        "add",
        "ada@example.org",
        "-i",
        "LoRA; graph neural networks",
        "--timezone",
        "Asia/Tokyo",
        "--confirmed",
    )
    cli("subscribers", "add", "bo@example.org", "-i", "diffusion", "--hour", "9")
    exported = cli("subscribers", "export").stdout
    rows = list(csv.DictReader(io.StringIO(exported)))
    assert [r["email"] for r in rows] == ["ada@example.org", "bo@example.org"]
    before = {r["email"]: r for r in _list_json(cli)}

    monkeypatch.setenv("NEWSLETTER_DATABASE_URL", f"sqlite:///{tmp_path / 'other.db'}")
    (tmp_path / "export.csv").write_text(exported)
    assert "2 added, 0 rejected" in cli("subscribers", "import", str(tmp_path / "export.csv")).stderr
    after = {r["email"]: r for r in _list_json(cli)}
    for email, row in before.items():
        for key in ("interests", "timezone", "send_hour", "status", "frequency", "max_papers"):
            assert after[email][key] == row[key]


def test_list_filters_by_status_and_prints_csv(cli, database_url) -> None:  # type: ignore[no-untyped-def]
    cli("subscribers", "add", "a@example.org", "-i", "LoRA", "--confirmed")
    cli("subscribers", "add", "b@example.org", "-i", "LoRA")
    result = cli("subscribers", "list", "--status", "active", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [r["email"] for r in rows] == ["a@example.org"]


def test_table_output_shows_brackets_literally(cli, database_url) -> None:  # type: ignore[no-untyped-def]
    cli("subscribers", "add", "a@example.org", "-i", "[bold]x[/bold] LoRA")
    table = cli("subscribers", "list").stdout
    assert "[bold]x[/" in table
