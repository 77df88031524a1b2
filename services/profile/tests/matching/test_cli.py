"""`mailwright identity`: resolve, generate and evaluate from the command line."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from mailwright.cli import cli


def _run(*args: str | Path) -> Result:
    return CliRunner().invoke(cli, [str(arg) for arg in args], catch_exceptions=False)


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_the_root_command_finds_the_identity_group() -> None:
    result = _run("identity", "--help")
    assert result.exit_code == 0
    for command in ("resolve", "generate", "evaluate"):
        assert command in result.output


def test_generate_resolve_and_evaluate_end_to_end(tmp_path: Path) -> None:
    records, truth = tmp_path / "in.csv", tmp_path / "truth.csv"
    out, review = tmp_path / "out.csv", tmp_path / "review.csv"
    generated = _run(
        "identity", "generate", "1500", "--out", records, "--truth", truth, "--seed", 3
    )
    assert generated.exit_code == 0, generated.output

    resolved = _run(
        "identity", "resolve", records, "--out", out, "--default-region", "US",
        "--review-out", review,
    )  # fmt: skip
    assert resolved.exit_code == 0, resolved.output
    for word in ("records", "comparisons", "clusters", "merges", "review pairs"):
        assert word in resolved.output
    rows = _rows(out)
    assert [row["record_id"] for row in rows] == [row["record_id"] for row in _rows(records)]
    assert all(row["profile_id"].startswith("prof_") for row in rows)
    header = review.read_text(encoding="utf-8").splitlines()[0]
    assert header == "left_record_id,right_record_id,probability,match_weight"

    evaluated = _run("identity", "evaluate", out, truth)
    assert evaluated.exit_code == 0, evaluated.output
    precision = float(evaluated.output.split("precision")[1].split()[0])
    recall = float(evaluated.output.split("recall")[1].split()[0])
    assert precision >= 0.95
    assert recall >= 0.9


def test_profile_ids_are_stable_for_the_same_input(tmp_path: Path) -> None:
    records = _write(
        tmp_path / "in.csv",
        "record_id,email,first_name,last_name\n"
        "1,ann.lee@example.com,Ann,Lee\n2,ANN.LEE@example.com,Ann,Lee\n3,bo@example.com,Bo,Ng\n",
    )
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    assert _run("identity", "resolve", records, "--out", first).exit_code == 0
    assert _run("identity", "resolve", records, "--out", second).exit_code == 0
    assert first.read_text() == second.read_text()
    rows = _rows(first)
    assert rows[0]["profile_id"] == rows[1]["profile_id"] != rows[2]["profile_id"]


def test_other_columns_are_ignored_and_values_may_be_empty(tmp_path: Path) -> None:
    records = _write(tmp_path / "in.csv", "notes,record_id,email\nhello,1,\n,2,\n")
    result = _run("identity", "resolve", records, "--out", tmp_path / "out.csv")
    assert result.exit_code == 0, result.output
    assert len(_rows(tmp_path / "out.csv")) == 2


def test_a_spreadsheet_export_is_read_whatever_its_header_case_and_separator(
    tmp_path: Path,
) -> None:
    """A European spreadsheet's export: semicolons, headers as people write them."""
    records = _write(
        tmp_path / "in.csv",
        "Record ID;Email;First Name;Last-Name;Accepts Marketing\n"
        "1;ann@example.com;Ann;Lee;yes\n2;ANN@example.com ;Ann;Lee;no\n",
    )
    result = _run("identity", "resolve", records, "--out", tmp_path / "out.csv")
    assert result.exit_code == 0, result.output
    rows = _rows(tmp_path / "out.csv")
    assert [row["record_id"] for row in rows] == ["1", "2"]
    assert rows[0]["profile_id"] == rows[1]["profile_id"]  # one email, read as email


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("email,first_name\na@example.com,Ann\n", "line 1: no 'record_id' column"),
        ("", "line 1: empty file"),
        ("record_id,email\n1,a@example.com\n1,b@example.com\n", "line 3: duplicate record_id '1'"),
        ("record_id,email\n1,a@example.com\n,b@example.com\n", "line 3: record_id"),
        ('record_id,email\n1,"unterminated\n', "line 2: not valid CSV"),
        ("record_id,email\n1,a@example.com,extra\n", "line 2: more values than the header"),
        ("record_id,email,email\n1,a,b\n", "column 'email' appears twice"),
        ("record_id,Email,email\n1,a,b\n", "columns 'Email' and 'email' are both email"),
        ("record_id,first_name\n1," + "x" * 5_000 + "\n", "line 2: first_name is longer"),
    ],
)
def test_bad_input_is_a_clear_error_naming_the_line(
    tmp_path: Path, content: str, message: str
) -> None:
    records = _write(tmp_path / "in.csv", content)
    out = tmp_path / "out.csv"
    result = _run("identity", "resolve", records, "--out", out)
    assert result.exit_code == 1
    assert message in result.output
    assert not out.exists()


def test_a_file_that_is_not_utf8_is_a_clear_error(tmp_path: Path) -> None:
    records = tmp_path / "in.csv"
    records.write_bytes("record_id,first_name\n1,Jos\xe9\n".encode("latin-1"))
    result = _run("identity", "resolve", records, "--out", tmp_path / "out.csv")
    assert result.exit_code == 1
    assert "not UTF-8" in result.output


def test_a_missing_input_file_is_a_clear_error(tmp_path: Path) -> None:
    result = _run("identity", "resolve", tmp_path / "nope.csv", "--out", tmp_path / "out.csv")
    assert result.exit_code == 1
    assert "cannot read" in result.output


def test_the_review_threshold_may_not_exceed_the_threshold(tmp_path: Path) -> None:
    records = _write(tmp_path / "in.csv", "record_id\n1\n")
    result = _run(
        "identity", "resolve", records, "--out", tmp_path / "o.csv",
        "--threshold", "0.8", "--review-threshold", "0.9",
    )  # fmt: skip
    assert result.exit_code == 2
    assert "--review-threshold" in result.output


def test_an_unknown_default_region_is_refused(tmp_path: Path) -> None:
    records = _write(tmp_path / "in.csv", "record_id\n1\n")
    result = _run(
        "identity", "resolve", records, "--out", tmp_path / "o.csv", "--default-region", "XX"
    )
    assert result.exit_code == 2
    assert "--default-region" in result.output


def test_evaluate_refuses_files_of_different_records(tmp_path: Path) -> None:
    out = _write(tmp_path / "out.csv", "record_id,profile_id\n1,p\n")
    truth = _write(tmp_path / "truth.csv", "record_id,person_id\n1,x\n2,x\n")
    result = _run("identity", "evaluate", out, truth)
    assert result.exit_code == 1
    assert "record ids differ" in result.output


def test_a_field_beyond_the_csv_limit_is_a_clear_error(tmp_path: Path) -> None:
    records = _write(tmp_path / "in.csv", "record_id,first_name\n1," + "x" * 200_000 + "\n")
    result = _run("identity", "resolve", records, "--out", tmp_path / "out.csv")
    assert result.exit_code == 1
    assert "line 2" in result.output
