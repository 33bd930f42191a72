"""The single-register families' own generative models (for recovery studies) against their moments."""

from __future__ import annotations

import numpy as np
import pytest
from pytensor.compile.mode import Mode

from estim.families.single_register import recovery as register_recovery

FAST = Mode(linker="py", optimizer="fast_compile")


def test_generative_models_have_the_family_moments():
    rng = np.random.default_rng(1)
    size = 400_000
    lam, alpha, omega = 0.5, 1.0, 0.2
    pois = register_recovery.simulate_counts("ztpoisson", rng, size, {"lambda": lam})
    geo = register_recovery.simulate_counts("ztgeometric", rng, size, {"lambda": lam})
    nb = register_recovery.simulate_counts("ztnegbin", rng, size, {"lambda": lam, "alpha": alpha})
    oi = register_recovery.simulate_counts(
        "oiztpoisson", rng, size, {"lambda": lam, "omega": omega}
    )
    assert pois.mean() == pytest.approx(lam, rel=0.01)
    assert np.mean(pois == 0) == pytest.approx(np.exp(-lam), rel=0.01)
    assert geo.mean() == pytest.approx(lam, rel=0.01)
    assert np.mean(geo == 0) == pytest.approx(1 / (1 + lam), rel=0.01)
    assert nb.mean() == pytest.approx(lam, rel=0.015)
    assert nb.var() == pytest.approx(lam * (1 + alpha * lam), rel=0.03)
    # inflate, then truncate: P*(0) = (1 − ω) p0 and P*(1) = ω + (1 − ω) P(1)
    assert np.mean(oi == 0) == pytest.approx((1 - omega) * np.exp(-lam), rel=0.01)
    assert np.mean(oi == 1) == pytest.approx(omega + (1 - omega) * lam * np.exp(-lam), rel=0.01)
