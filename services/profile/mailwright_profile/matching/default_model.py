"""The match model for batches too small to fit their own.

EM needs thousands of records to find m, u and λ; an import of a few records against a
few candidates has far too few. Such a batch is scored with the model last fitted for
its workspace, or — before any — with this one, fitted on generated records
(`generate_records`, the same people and noise as the quality figures in
docs/identity.md). The fitted parameters ship as `default_model.json`; refit with

    python -m mailwright_profile.matching.default_model [--records 20000] [--seed 7]
"""

from __future__ import annotations

import argparse
import json
from functools import lru_cache
from pathlib import Path

from mailwright_profile.matching.generate import generate_records
from mailwright_profile.matching.model import MatchModel
from mailwright_profile.matching.resolve import ResolutionSettings, resolve

__all__ = ["DEFAULT_MODEL_PATH", "default_model", "fit_default_model"]

DEFAULT_MODEL_PATH = Path(__file__).with_name("default_model.json")


def fit_default_model(records: int = 20_000, seed: int = 7) -> MatchModel:
    """Fit the model on `records` generated records."""
    generated = generate_records(records, seed=seed)
    resolution = resolve(generated.records, ResolutionSettings(default_region="US", seed=seed))
    if resolution.model is None:
        raise RuntimeError("the generated records gave no candidate pairs to fit on")
    return resolution.model


@lru_cache(maxsize=1)
def default_model() -> MatchModel:
    """The shipped model (read once)."""
    return MatchModel.from_json(json.loads(DEFAULT_MODEL_PATH.read_text(encoding="utf-8")))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m mailwright_profile.matching.default_model")
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    model = fit_default_model(args.records, args.seed)
    DEFAULT_MODEL_PATH.write_text(json.dumps(model.to_json(), indent=1) + "\n", encoding="utf-8")
    print(f"wrote {DEFAULT_MODEL_PATH} (prior {model.prior:.3g})")


if __name__ == "__main__":
    main()
