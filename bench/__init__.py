<<<<<<< HEAD
"""Benchmarks of Mailwright: each `bench_<name>.py` has `run(quick) -> list[Result]`."""
=======
"""Benchmarks: each `bench_<name>.py` exposes `run(quick) -> list[Result]`, ratios vs a baseline."""
>>>>>>> render-domain
