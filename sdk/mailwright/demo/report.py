"""The demo's closing report, read back through the public gRPC APIs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from rich.console import Console
from rich.table import Table

from mailwright.delivery.v1 import delivery_pb2 as dpb
from mailwright.runtime.clients import Clients

from .workspace import PARENT


@dataclass(frozen=True)
class Row:
    audience: int = 0
    sent: int = 0
    skipped: int = 0
    opens: int = 0
    clicks: int = 0
    conversions: int = 0
    revenue: str = "0"

    @classmethod
    def of(cls, row: dpb.ReportRow) -> Row:
        revenue = f"{row.revenue.amount} {row.revenue.currency_code}".strip()
        return cls(
            audience=row.audience,
            sent=row.sent,
            skipped=row.skipped,
            opens=row.unique_opens,
            clicks=row.unique_clicks,
            conversions=row.conversions,
            revenue=revenue or "0",
        )


@dataclass(frozen=True)
class DemoReport:
    segments: Mapping[str, int]
    """Members of each segment when the campaign started."""
    suppressions: int
    campaign: Row
    holdout: Row
    variants: Mapping[str, Row]
    journeys: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    """Per journey: entered, and people waiting per step."""
    messages: int = 0
    """`.eml` files in the outbox."""
    models: Sequence[str] = ()
    """The scorers trained before the segments were computed."""
    scores: Mapping[str, int] = field(default_factory=dict)
    """Per score (computed trait) they write: the profiles that got one."""

    def as_json(self) -> dict[str, Any]:
        return {
            "models": list(self.models),
            "scores": dict(self.scores),
            "segments": dict(self.segments),
            "suppressions": self.suppressions,
            "campaign": asdict(self.campaign),
            "holdout": asdict(self.holdout),
            "variants": {key: asdict(row) for key, row in sorted(self.variants.items())},
            "journeys": {key: dict(row) for key, row in self.journeys.items()},
            "messages": self.messages,
        }


async def campaign_rows(clients: Clients, campaign: str) -> tuple[Row, Row, dict[str, Row]]:
    report = (
        await clients.delivery.GetCampaignReport(dpb.GetCampaignReportRequest(name=campaign))
    ).report
    total, holdout, variants = Row(), Row(), {}
    for row in report.rows:
        if row.dimension == "total":
            total = Row.of(row)
        elif row.dimension == "holdout":
            holdout = Row.of(row)
        elif row.dimension.startswith("variant:"):
            variants[row.dimension.removeprefix("variant:")] = Row.of(row)
    return total, holdout, variants


async def count_suppressions(clients: Clients) -> int:
    count, token = 0, ""
    while True:
        reply = await clients.delivery.ListSuppressions(
            dpb.ListSuppressionsRequest(parent=PARENT, page_size=1000, page_token=token)
        )
        count += len(reply.suppressions)
        token = reply.next_page_token
        if not token:
            return count


async def journey_figures(clients: Clients, names: Sequence[str]) -> dict[str, dict[str, int]]:
    figures = {}
    for name in names:
        reply = await clients.delivery.GetJourneyReport(dpb.GetJourneyReportRequest(name=name))
        row = {"entered": reply.entered, "goals": reply.goals_reached}
        row.update({f"waiting at {step}": n for step, n in sorted(reply.waiting.items()) if n})
        figures[name.rsplit("/", 1)[-1]] = row
    return figures


async def gather(
    clients: Clients,
    *,
    segments: Mapping[str, int],
    campaign: str,
    journeys: Sequence[str],
    messages: int,
    models: Sequence[str],
    scores: Mapping[str, int],
) -> DemoReport:
    total, holdout, variants = await campaign_rows(clients, campaign)
    return DemoReport(
        models=models,
        scores=scores,
        segments=segments,
        suppressions=await count_suppressions(clients),
        campaign=total,
        holdout=holdout,
        variants=variants,
        journeys=await journey_figures(clients, journeys),
        messages=messages,
    )


def show(console: Console, report: DemoReport) -> None:
    scores = ", ".join(f"{key} {count:,}" for key, count in report.scores.items())
    console.print(
        f"predictive models: {', '.join(report.models) or 'none trained'};"
        f" profiles scored: {scores or 'none'}"
    )
    sizes = Table(title="Segments when the campaign started", title_justify="left")
    sizes.add_column("segment")
    sizes.add_column("members", justify="right")
    for name, size in report.segments.items():
        sizes.add_row(name, f"{size:,}")
    console.print(sizes)

    campaign = Table(title="Campaign weekend-sale (A/B test on the subject)", title_justify="left")
    for column in ("group", "audience", "sent", "skipped", "opens", "clicks", "orders", "revenue"):
        campaign.add_column(column, justify="left" if column == "group" else "right", no_wrap=True)
    rows = [("all", report.campaign)]
    rows += [(f"variant {key}", row) for key, row in sorted(report.variants.items())]
    rows.append(("holdout", report.holdout))
    for label, row in rows:
        campaign.add_row(
            label,
            f"{row.audience:,}",
            f"{row.sent:,}",
            f"{row.skipped:,}",
            f"{row.opens:,}",
            f"{row.clicks:,}",
            f"{row.conversions:,}",
            row.revenue,
        )
    console.print(campaign)
    for journey, figures in report.journeys.items():
        text = ", ".join(f"{k} {v:,}" for k, v in figures.items())
        console.print(f"journey [bold]{journey}[/]: {text}")
    console.print(
        f"suppressed addresses: {report.suppressions:,}    "
        f"messages in the outbox: {report.messages:,}"
    )
