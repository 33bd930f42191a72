"""The one interval estim reports, against NumPy's quantiles and order statistics worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from estim.intervals import equal_tailed, equal_tailed_array, tail_probabilities


def test_tail_probabilities():
    assert tail_probabilities(0.9) == pytest.approx((0.05, 0.95))
    assert tail_probabilities(0.5) == pytest.approx((0.25, 0.75))
    with pytest.raises(ValueError):
        tail_probabilities(1.0)


def test_interval_of_the_integers_1_to_101():
    # the 5 % and 95 % quantiles of 1..101 (linear interpolation) are the 6th and 96th values
    draws = np.arange(1, 102, dtype=float)
    lower, median, upper = equal_tailed_array(draws, 0.9)
    assert (lower, median, upper) == pytest.approx((6.0, 51.0, 96.0))


def test_xarray_interval_over_chain_and_draw_keeps_other_dims():
    rng = np.random.default_rng(0)
    values = rng.normal(size=(2, 500, 3))
    da = xr.DataArray(
        values, dims=("chain", "draw", "section"), coords={"section": ["a", "b", "c"]}
    )
    q = equal_tailed(da, 0.8)
    assert list(q["quantile"].values) == ["lower", "median", "upper"]
    flat = values.reshape(1000, 3)
    np.testing.assert_allclose(q.sel(quantile="lower").values, np.quantile(flat, 0.1, axis=0))
    np.testing.assert_allclose(q.sel(quantile="upper").values, np.quantile(flat, 0.9, axis=0))
    assert q.sel(section="b", quantile="median") == pytest.approx(np.median(flat[:, 1]))
