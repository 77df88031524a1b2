"""Shared simulated data for the predictive-model tests."""

from __future__ import annotations

import numpy as np
import pytest

from mailwright_profile.predict.bgnbd import BgNbd
from mailwright_profile.predict.gammagamma import GammaGamma
from mailwright_profile.predict.simulate import SimulatedCustomers, simulate_customers

# The published CDNOW estimates (Fader, Hardie & Lee 2005; Fader & Hardie's Gamma-Gamma
# note), in weeks: a realistic point to simulate from.
CDNOW_BGNBD = BgNbd(r=0.243, alpha=4.414, a=0.793, b=2.426)
CDNOW_GAMMA_GAMMA = GammaGamma(p=6.25, q=3.74, v=15.44)


@pytest.fixture(scope="session")
def cdnow_like() -> SimulatedCustomers:
    """4,000 customers from the CDNOW parameters, observed 27 to 39 weeks each."""
    T = np.random.default_rng(20050101).uniform(27.0, 39.0, size=4000)
    return simulate_customers(CDNOW_BGNBD, T, spend=CDNOW_GAMMA_GAMMA, seed=7)
