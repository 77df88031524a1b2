"""The chart of a campaign report: rates per row (total, variants, segments), as a PNG or
as an HTML page carrying the same picture and the table."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

from mailwright.delivery.v1 import delivery_pb2 as pb

RATES = (
    ("open rate", "open_rate"),
    ("click rate", "click_rate"),
    ("conversion", "conversion_rate"),
)


def png(report: pb.Report, title: str) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    rows = [row for row in report.rows if row.dimension != "holdout" or row.sent]
    labels = [row.dimension for row in rows] or ["total"]
    figure, axes = pyplot.subplots(figsize=(max(6.0, 1.4 * len(labels) + 2), 4.0), dpi=110)
    width = 0.8 / len(RATES)
    for index, (name, attribute) in enumerate(RATES):
        values = [100 * getattr(row, attribute) for row in rows] or [0.0]
        positions = [i + (index - 1) * width for i in range(len(labels))]
        bars = axes.bar(positions, values, width, label=name)
        axes.bar_label(bars, fmt="%.1f%%", fontsize=7)
    axes.set_xticks(range(len(labels)), labels, rotation=20, ha="right", fontsize=8)
    axes.set_ylabel("% of sent")
    axes.set_title(title)
    axes.legend(fontsize=8)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    pyplot.close(figure)
    return buffer.getvalue()


def page(report: pb.Report, title: str) -> str:
    picture = base64.b64encode(png(report, title)).decode()
    head = "".join(
        f"<th>{h}</th>"
        for h in (
            "row",
            "sent",
            "delivered",
            "opens",
            "machine opens",
            "clicks",
            "CTO",
            "conversions",
            "revenue",
            "unsubs",
            "bounces",
            "complaints",
        )
    )
    body = "".join(
        "<tr>"
        + "".join(
            f"<td>{html.escape(str(v))}</td>"
            for v in (
                r.dimension,
                r.sent,
                r.delivered,
                r.unique_opens,
                r.machine_opens,
                r.unique_clicks,
                f"{100 * r.click_to_open:.1f}%",
                r.conversions,
                f"{r.revenue.amount} {r.revenue.currency_code}".strip(),
                r.unsubscribes,
                r.bounces,
                r.complaints,
            )
        )
        + "</tr>"
        for r in report.rows
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        "<style>body{font-family:sans-serif}td,th{padding:4px 8px;border-bottom:1px solid #ddd}"
        "</style></head><body>"
        f"<h1>{html.escape(title)}</h1><img alt='rates' src='data:image/png;base64,{picture}'>"
        f"<table><tr>{head}</tr>{body}</table></body></html>"
    )


def write(report: pb.Report, title: str, path: Path) -> None:
    if path.suffix.lower() in (".html", ".htm"):
        path.write_text(page(report, title), encoding="utf-8")
    else:
        path.write_bytes(png(report, title))
