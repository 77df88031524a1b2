"""`mailwright predict clv fit` on files: both inputs, both units, and every bad input."""

from __future__ import annotations

import csv
import json
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from mailwright.cli import cli as mailwright_cli
from mailwright_profile.predict.bgnbd import BgNbd
from mailwright_profile.predict.cli import predict
from mailwright_profile.predict.gammagamma import GammaGamma
from mailwright_profile.predict.simulate import simulate_transactions
from mailwright_profile.predict.summary import CustomerSummary, Transaction

DAILY = BgNbd(r=0.243, alpha=4.414 * 7, a=0.793, b=2.426)
SPEND = GammaGamma(p=6.25, q=3.74, v=15.44)
END = date(2024, 9, 30)


@pytest.fixture(scope="module")
def transactions() -> list[Transaction]:
    log, _ = simulate_transactions(
        DAILY, 600, start=date(2024, 1, 1), calibration_end=END, spend=SPEND, seed=4
    )
    return log


def _write_transactions(path: Path, log: list[Transaction], *, header: bool = True) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        if header:
            writer.writerow(["customer_id", "date", "amount"])
        for tx in log:
            writer.writerow([tx.customer_id, tx.day.isoformat(), tx.amount])
    return path


def _write_summary(path: Path, summary: CustomerSummary, *, money: bool = True) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["customer_id", "frequency", "recency", "T"] + (["monetary_value"] if money else [])
        )
        assert summary.monetary_value is not None
        for i, customer in enumerate(summary.customer_ids):
            row = [customer, summary.frequency[i], summary.recency[i], summary.T[i]]
            writer.writerow(row + ([summary.monetary_value[i]] if money else []))
    return path


def _run(*args: str | Path) -> Result:
    return CliRunner().invoke(predict, ["clv", "fit", *map(str, args)])


def _fit(*args: str | Path) -> dict[str, object]:
    result = _run(*args)
    assert result.exit_code == 0, result.output
    output = json.loads(result.stdout)
    assert isinstance(output, dict)
    return output


def test_transactions_with_amounts_print_both_models(
    tmp_path: Path, transactions: list[Transaction]
) -> None:
    path = _write_transactions(tmp_path / "tx.csv", transactions)
    output = _fit("--transactions", path, "--amount-col", "amount")
    assert set(output) == {"bgnbd", "gamma_gamma", "customers"}
    assert set(output["bgnbd"]) == {"r", "alpha", "a", "b", "log_likelihood"}  # type: ignore[arg-type]
    assert set(output["gamma_gamma"]) == {"p", "q", "v"}  # type: ignore[arg-type]
    assert output["customers"] == 600


def test_transactions_without_amounts_have_no_spend_model(
    tmp_path: Path, transactions: list[Transaction]
) -> None:
    path = _write_transactions(tmp_path / "tx.csv", transactions)
    assert _fit("--transactions", path)["gamma_gamma"] is None


def test_the_command_is_reachable_from_the_root_cli(
    tmp_path: Path, transactions: list[Transaction]
) -> None:
    path = _write_transactions(tmp_path / "tx.csv", transactions)
    result = CliRunner().invoke(
        mailwright_cli, ["predict", "clv", "fit", "--transactions", str(path)]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["customers"] == 600


def test_summary_file_gives_the_same_fit_as_its_transactions(
    tmp_path: Path, transactions: list[Transaction]
) -> None:
    summary = CustomerSummary.from_transactions(transactions, calibration_end=END)
    from_summary = _fit("--summary", _write_summary(tmp_path / "s.csv", summary))
    from_log = _fit(
        "--transactions",
        _write_transactions(tmp_path / "tx.csv", transactions),
        "--amount-col",
        "amount",
        "--calibration-end",
        END.isoformat(),
    )
    assert from_summary["customers"] == from_log["customers"]
    for model in ("bgnbd", "gamma_gamma"):
        assert from_summary[model] == pytest.approx(from_log[model], rel=1e-9)


def test_week_unit_rescales_alpha_and_nothing_else(
    tmp_path: Path, transactions: list[Transaction]
) -> None:
    path = _write_transactions(tmp_path / "tx.csv", transactions)
    days = _fit("--transactions", path)["bgnbd"]
    weeks = _fit("--transactions", path, "--time-unit", "week")["bgnbd"]
    assert isinstance(days, dict)
    assert isinstance(weeks, dict)
    assert weeks["alpha"] == pytest.approx(days["alpha"] / 7, rel=1e-5)
    for name in ("r", "a", "b"):
        assert weeks[name] == pytest.approx(days[name], rel=1e-5)


def test_summary_values_are_taken_in_the_unit_given(
    tmp_path: Path, transactions: list[Transaction]
) -> None:
    path = _write_summary(
        tmp_path / "s.csv", CustomerSummary.from_transactions(transactions), money=False
    )
    assert _fit("--summary", path, "--time-unit", "week") == _fit("--summary", path)


def test_purchases_on_the_same_day_count_once(
    tmp_path: Path, transactions: list[Transaction]
) -> None:
    # Splitting every purchase into two rows on the same day changes nothing.
    doubled = [
        Transaction(tx.customer_id, tx.day, amount)
        for tx in transactions
        for amount in (round(tx.amount * 0.25, 4), round(tx.amount * 0.75, 4))  # type: ignore[operator]
    ]
    once = _fit(
        "--transactions",
        _write_transactions(tmp_path / "a.csv", transactions),
        "--amount-col",
        "amount",
    )
    twice = _fit(
        "--transactions", _write_transactions(tmp_path / "b.csv", doubled), "--amount-col", "amount"
    )
    assert twice["bgnbd"] == once["bgnbd"]
    assert twice["gamma_gamma"] == pytest.approx(once["gamma_gamma"], rel=1e-6)


def test_date_format_option_parses_other_layouts(tmp_path: Path) -> None:
    path = tmp_path / "tx.csv"
    rows = ["who,when"] + [f"c{i},0{1 + i % 9}/0{1 + i % 3}/2024" for i in range(40)]
    rows += [f"c{i},15/0{4 + i % 5}/2024" for i in range(0, 40, 2)]
    path.write_text("\n".join(rows) + "\n")
    output = _fit(
        "--transactions",
        path,
        "--customer-col",
        "who",
        "--date-col",
        "when",
        "--date-format",
        "%d/%m/%Y",
        "--calibration-end",
        "30/09/2024",
    )
    assert output["customers"] == 40


BAD_INPUTS: dict[str, tuple[str, list[str], str]] = {
    "empty file": ("", [], "is empty"),
    "header only": ("customer_id,date\n", [], "has a header but no transactions"),
    "unknown customer column": ("id,date\na,2024-01-01\n", [], "unknown column 'customer_id'"),
    "unknown date column": ("customer_id,day\na,2024-01-01\n", [], "unknown column 'date'"),
    "unknown amount column": (
        "customer_id,date\na,2024-01-01\n",
        ["--amount-col", "amount"],
        "unknown column 'amount'",
    ),
    "row with too many fields": (
        "customer_id,date\na,2024-01-01\nb,2024-01-02,9\n",
        [],
        "line 3 has 3 fields",
    ),
    "unparseable date": ("customer_id,date\na,2024-13-01\n", [], "cannot parse date '2024-13-01'"),
    "negative amount": (
        "customer_id,date,amount\na,2024-01-01,5\na,2024-01-02,-3\n",
        ["--amount-col", "amount"],
        "line 3: negative amount -3",
    ),
    "amount not a number": (
        "customer_id,date,amount\na,2024-01-01,five\n",
        ["--amount-col", "amount"],
        "'five' is not a number",
    ),
    "empty customer id": ("customer_id,date\n,2024-01-01\n", [], "empty customer id"),
    "too few customers": (
        "customer_id,date\na,2024-01-01\na,2024-01-05\nb,2024-01-02\n",
        [],
        "at least 10 customers",
    ),
    "no repeat purchases": (
        "customer_id,date\n" + "".join(f"c{i},2024-01-0{1 + i % 9}\n" for i in range(30)),
        [],
        "no customer has a repeat purchase",
    ),
    "bad calibration end": (
        "customer_id,date\na,2024-01-01\n",
        ["--calibration-end", "soon"],
        "cannot parse date",
    ),
    "everything after the calibration end": (
        "customer_id,date\na,2024-03-01\n",
        ["--calibration-end", "2024-01-01"],
        "no transactions",
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS), ids=list(BAD_INPUTS))
def test_bad_transaction_files_fail_with_a_one_line_error(tmp_path: Path, case: str) -> None:
    content, options, message = BAD_INPUTS[case]
    path = tmp_path / "tx.csv"
    path.write_text(content)
    result = _run("--transactions", path, *options)
    assert result.exit_code != 0
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1 or "Usage:" in result.output


BAD_SUMMARIES: dict[str, tuple[str, str]] = {
    "missing T column": ("frequency,recency\n1,2\n", "unknown column 'T'"),
    "recency after T (dates out of order)": (
        "frequency,recency,T\n1,5,4\n" + "0,0,4\n" * 20,
        "recency: is after T",
    ),
    "frequency 0 with monetary value": (
        "frequency,recency,T,monetary_value\n0,0,4,12\n" + "1,2,4,3\n" * 20,
        "monetary_value: must be 0 when frequency is 0",
    ),
    "negative monetary value": (
        "frequency,recency,T,monetary_value\n1,2,4,-12\n",
        "monetary_value: must be >= 0",
    ),
    "not a number": ("frequency,recency,T\n1,two,4\n", "recency: line 2: 'two' is not a number"),
    "infinite": ("frequency,recency,T\n1,2,inf\n", "T: line 2: 'inf' is not a finite number"),
    "repeated customer ids": (
        "customer_id,frequency,recency,T\na,1,2,4\na,0,0,4\n",
        "customer ids repeat",
    ),
    "too few customers": ("frequency,recency,T\n1,2,4\n0,0,3\n", "at least 10 customers"),
}


@pytest.mark.parametrize("case", list(BAD_SUMMARIES), ids=list(BAD_SUMMARIES))
def test_bad_summary_files_fail_with_a_one_line_error(tmp_path: Path, case: str) -> None:
    content, message = BAD_SUMMARIES[case]
    path = tmp_path / "summary.csv"
    path.write_text(content)
    result = _run("--summary", path)
    assert result.exit_code == 1
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_non_utf8_file_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "tx.csv"
    path.write_bytes(b"customer_id,date\n\xff\xfe,2024-01-01\n")
    result = _run("--transactions", path)
    assert result.exit_code == 1
    assert "not UTF-8 text" in result.output


@pytest.mark.parametrize(
    "options",
    [[], ["--transactions", "{tx}", "--summary", "{tx}"]],
    ids=["neither", "both"],
)
def test_exactly_one_input_is_required(tmp_path: Path, options: list[str]) -> None:
    path = tmp_path / "tx.csv"
    path.write_text("customer_id,date\na,2024-01-01\n")
    result = _run(*[option.format(tx=path) for option in options])
    assert result.exit_code == 2
    assert "exactly one of --transactions or --summary" in result.output
