"""`mailwright predict report`: the current models' metrics as text and as plots.

`summarise` turns stored versions into printable rows; `write_plots` draws, with
matplotlib's Agg backend (no display needed), for each classifier a calibration plot
(reliability bins of the model and of the recency-only baseline against the diagonal)
and a lift chart (lift per score decile, model against baseline), and the distribution
of `clv_12m` over the workspace's profiles.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mailwright_profile.predict.service import StoredVersion

__all__ = ["ModelSummary", "summarise", "write_plots"]


@dataclass(frozen=True)
class ModelSummary:
    scorer: str
    version: str
    trained_at: str
    lines: tuple[str, ...]


def _number(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _classifier_lines(metrics: Mapping[str, Any]) -> list[str]:
    model = metrics.get("validation") or {}
    baseline = metrics.get("recency_baseline") or {}
    lines = [
        f"validation rows {_number(model.get('n'))}, positives {_number(model.get('positives'))}"
        f" (base rate {_number(model.get('base_rate'))}), "
        f"training rows {_number(metrics.get('train_rows'))}",
        f"{'':28}{'model':>10}{'recency baseline':>18}",
    ]
    for key, label in (
        ("auc", "AUC"),
        ("precision_at_top_decile", "precision at top decile"),
        ("lift_at_top_decile", "lift at top decile"),
        ("expected_calibration_error", "calibration error (ECE)"),
        ("brier", "Brier score"),
    ):
        lines.append(f"{label:28}{_number(model.get(key)):>10}{_number(baseline.get(key)):>18}")
    return lines


def _clv_lines(version: StoredVersion) -> list[str]:
    parameters, metrics = version.version.parameters, version.version.metrics
    bgnbd = parameters.get("bgnbd") or {}
    spend = parameters.get("gamma_gamma")
    lines = [
        f"customers {_number(metrics.get('customers'))}, "
        f"repeat {_number(metrics.get('repeat_customers'))}",
        "BG/NBD (days): "
        + ", ".join(f"{k} {_number(bgnbd.get(k))}" for k in ("r", "alpha", "a", "b"))
        + f"; log-likelihood {_number(metrics.get('bgnbd_log_likelihood'))}",
    ]
    if spend:
        lines.append(
            "Gamma-Gamma: "
            + ", ".join(f"{k} {_number(spend.get(k))}" for k in ("p", "q", "v"))
            + f"; log-likelihood {_number(metrics.get('gamma_gamma_log_likelihood'))}"
        )
    else:
        lines.append("Gamma-Gamma: none (no purchase amounts)")
    holdout = metrics.get("holdout")
    if holdout:
        lines.append(
            f"holdout {holdout['days']} days: predicted {_number(holdout['predicted_purchases'])}"
            f" repeat purchases, actual {_number(holdout['actual_purchases'])}, "
            f"MAE {_number(holdout['mean_absolute_error'])}, "
            f"correlation {_number(holdout.get('correlation'))}"
        )
    return lines


def summarise(versions: Sequence[StoredVersion]) -> list[ModelSummary]:
    found = []
    for stored in sorted(versions, key=lambda s: s.version.name):
        version = stored.version
        metrics = version.metrics
        if "validation" in metrics and "recency_baseline" in metrics:
            lines = _classifier_lines(metrics)
        elif version.name == "clv" and "bgnbd" in version.parameters:
            lines = _clv_lines(stored)
        else:
            lines = [", ".join(f"{k} {_number(v)}" for k, v in metrics.items())]
        found.append(
            ModelSummary(
                version.name,
                version.version,
                version.trained_at.isoformat(timespec="seconds"),
                tuple(lines),
            )
        )
    return found


def write_plots(
    versions: Sequence[StoredVersion], clv_values: Sequence[float], out: Path
) -> list[Path]:
    """Write the PNGs into `out` (created if needed); the paths written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for stored in sorted(versions, key=lambda s: s.version.name):
        metrics = stored.version.metrics
        model, baseline = metrics.get("validation"), metrics.get("recency_baseline")
        if not model or not baseline:
            continue
        name = stored.version.name
        figure, axes = plt.subplots(figsize=(5, 5))
        axes.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfect")
        for label, held, style in ((name, model, "o-"), ("recency baseline", baseline, "s--")):
            bins = held.get("calibration") or []
            axes.plot(
                [b["mean_predicted"] for b in bins],
                [b["observed_rate"] for b in bins],
                style,
                label=f"{label} (ECE {held['expected_calibration_error']:.3f})",
            )
        axes.set(
            xlabel="mean predicted probability",
            ylabel="observed rate",
            title=f"{name}: calibration",
            xlim=(0, 1),
            ylim=(0, 1),
        )
        axes.legend(loc="upper left")
        written.append(_save(figure, out / f"{name}-calibration.png", plt))
        figure, axes = plt.subplots(figsize=(6, 4))
        deciles = list(range(1, 11))
        for label, held, offset in ((name, model, -0.2), ("recency baseline", baseline, 0.2)):
            lift = held.get("lift_by_decile") or []
            axes.bar([d + offset for d in deciles[: len(lift)]], lift, width=0.4, label=label)
        axes.axhline(1.0, color="grey", linestyle=":")
        axes.set(
            xlabel="score decile (1 = highest scores)",
            ylabel="lift over base rate",
            title=f"{name}: lift",
            xticks=deciles,
        )
        axes.legend()
        written.append(_save(figure, out / f"{name}-lift.png", plt))
    if clv_values:
        figure, axes = plt.subplots(figsize=(6, 4))
        axes.hist(list(clv_values), bins=50)
        axes.set(
            xlabel="clv_12m",
            ylabel="profiles",
            title=f"CLV over 12 months ({len(clv_values):,} profiles)",
        )
        written.append(_save(figure, out / "clv-distribution.png", plt))
    return written


def _save(figure: Any, path: Path, plt: Any) -> Path:
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
