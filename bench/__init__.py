"""Benchmarks: each `bench_<name>.py` exposes `run(quick) -> list[Result]`, ratios vs a baseline."""
