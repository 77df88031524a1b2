"""`mailwright demo --once` end to end on a small shop: the command as a newcomer runs it,
then the same demo again in-process, to compare what must not change between runs."""

from __future__ import annotations

import email
import email.policy
import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from mailwright.demo.commands import run_demo
from mailwright.runtime.settings import Settings

# Enough for the churn model: it needs 50 recent buyers at its training cutoff, which
# 200 customers did not have.
CUSTOMERS = 300
SEED = 2026

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """The command line: outbox and the report it wrote."""
    root = tmp_path_factory.mktemp("demo-cli")
    outbox, report = root / "outbox", root / "report.json"
    command = [
        *(sys.executable, "-m", "mailwright.cli", "demo", "--once"),
        *("--customers", str(CUSTOMERS), "--seed", str(SEED)),
        *("--outbox", str(outbox), "--report", str(report)),
        *("--data-dir", str(root / "data"), "--grpc-port", "0", "--http-port", "0"),
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILWRIGHT_")}
    done = subprocess.run(command, capture_output=True, text=True, timeout=240, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "token" in done.stderr
    assert "outbox" in done.stderr
    return outbox, json.loads(report.read_text("utf-8"))


def test_every_message_in_the_outbox_is_tracked_and_can_be_unsubscribed(
    cli_run: tuple[Path, dict[str, Any]],
) -> None:
    outbox, report = cli_run
    files = sorted(outbox.glob("*.eml"))
    assert files
    assert len(files) == report["messages"]
    for path in files:
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        unsubscribe = str(message["List-Unsubscribe"])
        assert re.search(r"<http://127\.0\.0\.1:\d+/u/[^>]+>", unsubscribe), unsubscribe
        # RFC 8058's List-Unsubscribe-Post comes with an HTTPS edge only; the demo's is
        # plain HTTP on 127.0.0.1.
        html = message.get_body(preferencelist=("html",))  # type: ignore[attr-defined]
        assert html is not None
        content = html.get_content()
        assert re.search(r'href="http://127\.0\.0\.1:\d+/t/c/[^"]+"', content)
        assert re.search(r"http://127\.0\.0\.1:\d+/t/o/[^\"]+\.gif", content)


def test_the_report_adds_up(cli_run: tuple[Path, dict[str, Any]]) -> None:
    _, report = cli_run
    campaign, holdout, variants = report["campaign"], report["holdout"], report["variants"]
    assert holdout["audience"] > 0
    assert holdout["sent"] == 0
    assert sorted(variants) == ["a", "b"]
    assert variants["a"]["sent"] + variants["b"]["sent"] == campaign["sent"]
    assert campaign["sent"] + campaign["skipped"] == campaign["audience"]
    # Earlier unsubscribes in the audience are skipped, never mailed.
    assert report["suppressions"] > 0
    assert campaign["skipped"] > 0
    assert campaign["sent"] == report["messages"]
    assert 0 < campaign["clicks"] <= campaign["opens"] < campaign["sent"]
    assert campaign["conversions"] > 0
    assert campaign["revenue"].endswith(" EUR")
    for segment in ("loyal-buyers", "inactive", "cart-abandoners", "browse-abandoners"):
        assert report["segments"][segment] > 0, segment
    assert report["journeys"]["cart-abandonment"]["entered"] > 0


def test_the_models_are_trained_before_the_segments(
    cli_run: tuple[Path, dict[str, Any]],
) -> None:
    # As the nightly `mailwright predict train` would have: without it no profile has a
    # churn_risk and at-risk-customers is empty whatever the shop.
    _, report = cli_run
    assert report["models"] == ["churn", "propensity", "send-time", "recommend"]
    assert 0 < report["scores"]["churn_risk"] < CUSTOMERS  # recent buyers only
    assert report["scores"]["purchase_propensity_30d"] == CUSTOMERS


def test_a_second_run_tells_the_same_story(
    cli_run: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    _, first = cli_run
    settings = Settings(
        data_dir=tmp_path / "data",
        grpc_port=0,
        http_port=0,
        bus_url=f"memory://demo-{uuid.uuid4().hex}",
        shutdown_grace=2,
    )  # type: ignore[call-arg]
    second = run_demo(
        settings, customers=CUSTOMERS, seed=SEED, outbox=tmp_path / "outbox", once=True
    ).as_json()
    assert second["models"] == first["models"]
    assert second["scores"] == first["scores"]
    assert second["segments"] == first["segments"]
    assert second["suppressions"] == first["suppressions"]
    # Who lands in the holdout or a variant hashes the profile id, which the profile
    # service draws at random: only the whole audience is the same on every run.
    audience = second["campaign"]["audience"] + second["holdout"]["audience"]
    assert audience == first["campaign"]["audience"] + first["holdout"]["audience"]
    assert second["journeys"]["cart-abandonment"] == first["journeys"]["cart-abandonment"]
