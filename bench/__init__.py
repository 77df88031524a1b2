"""Benchmarks of Mailwright: each `bench_<name>.py` has `run(quick) -> list[Result]`."""
