"""`python -m bench [--quick] [NAME...]`: run the benchmarks, print one table of ratios."""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import pkgutil
import resource
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench.common import Result


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--quick", action="store_true", help="smaller runs, for a smoke test")
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    parser.add_argument(
        "--markdown", type=Path, help="also write the table as Markdown (docs/benchmarks.md)"
    )
    parser.add_argument("names", nargs="*", help="only these benchmarks (e.g. bus)")
    args = parser.parse_args()
    found = sorted(
        info.name.removeprefix("bench_")
        for info in pkgutil.iter_modules([str(Path(__file__).parent)])
        if info.name.startswith("bench_")
    )
    table = Table("benchmark", "value", "baseline", "ratio", "goal", title="Mailwright benchmarks")
    console = Console()
    if not console.is_terminal:  # a log or a pipe: wide enough for one line a figure
        console = Console(width=160)
    started, cpu_started = time.monotonic(), _cpu()
    everything: list[dict[str, object]] = []
    timings: dict[str, float] = {}
    for name in args.names or found:
        module = importlib.import_module(f"bench.bench_{name}")
        began, cpu_began = time.monotonic(), _cpu()
        with console.status(f"bench {name}"):
            results: list[Result] = module.run(args.quick)
        took, cpu = time.monotonic() - began, _cpu() - cpu_began
        timings[name] = took
        console.print(
            f"bench {name}: {len(results)} figures in {took:.0f} s ({cpu:.0f} s CPU)", style="dim"
        )
        everything += [{"bench": name, **dataclasses.asdict(r)} for r in results]
        for r in results:
            table.add_row(
                r.name,
                f"{_number(r.value)} {r.unit}",
                f"{_number(r.baseline)} {r.baseline_unit}",
                f"{r.ratio:.2f}",
                r.goal,
            )
    console.print(table)
    console.print(
        f"{len(everything)} figures in {time.monotonic() - started:.0f} s"
        f" ({_cpu() - cpu_started:.0f} s CPU)"
    )
    if args.json is not None:
        args.json.write_text(json.dumps(everything, indent=2) + "\n")
    if args.markdown is not None:
        args.markdown.write_text(_markdown(everything))


def _cpu() -> float:
    """CPU seconds of this process and of its ended children (the database servers' work
    for us is not in it)."""
    own, children = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _number(value: float) -> str:
    """Thousands separated when large, three significant digits when small."""
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def _markdown(rows: list[dict[str, object]]) -> str:
    lines = [
        "| benchmark | figure | value | baseline | ratio | goal |",
        "|---|---|---:|---:|---:|---|",
    ]
    for row in rows:
        value, baseline, ratio = (float(str(row[k])) for k in ("value", "baseline", "ratio"))
        lines.append(
            f"| {row['bench']} | {row['name']} | {_number(value)} {row['unit']}"
            f" | {_number(baseline)} {row['baseline_unit']} | {ratio:.2f} | {row['goal']} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
