"""Probabilistic identity resolution: which records are one person.

Pure domain code (no gRPC, no database): records in, profiles with explained merges out.
The pieces, in the order `resolve` uses them:

- `records` — the `Record` read from sources, keyed by the standard trait keys;
- `features` — records as columns of values normalised by the SDK's `mailwright.normalize`;
- `blocking` — which pairs are worth comparing;
- `comparisons` — comparison levels per field;
- `model` and `training` — the Fellegi-Sunter model and how it is fitted by EM;
- `cluster` — merges into profiles, with the evidence for each;
- `generate` and `evaluate` — test records with known truth, and pairwise scores.
"""

from mailwright_profile.matching.cluster import Clustering, FieldEvidence, Link, profile_id
from mailwright_profile.matching.evaluate import PairwiseScores, pairwise_scores
from mailwright_profile.matching.generate import GeneratedRecords, Noise, generate_records
from mailwright_profile.matching.model import MatchModel
from mailwright_profile.matching.records import TRAIT_KEYS, Record, RecordError
from mailwright_profile.matching.resolve import (
    Resolution,
    ResolutionSettings,
    ScoredPair,
    resolve,
)

__all__ = [
    "TRAIT_KEYS",
    "Clustering",
    "FieldEvidence",
    "GeneratedRecords",
    "Link",
    "MatchModel",
    "Noise",
    "PairwiseScores",
    "Record",
    "RecordError",
    "Resolution",
    "ResolutionSettings",
    "ScoredPair",
    "generate_records",
    "pairwise_scores",
    "profile_id",
    "resolve",
]
