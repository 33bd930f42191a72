"""Simulation-based calibration (estim/studies/sbc.py, sbc_ranks.py): the proper prior on N and the exact law
of N it implies, the ranks and their ties, the uniformity rule against known cases, reproducible replicates,
resuming, the plots; and (slow) a small SBC through the dask runner."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.special
import scipy.stats

from estim.errors import EstimInputError
from estim.families.registry import load_all
from estim.studies import sbc, sbc_designs
from estim.studies import sbc_ranks as R

# --------------------------------------------------------------------------------------------------------------
# the proper prior on N


@pytest.mark.parametrize("mean", [200.0, 1000.0])
def test_the_population_prior_is_proper_and_its_draws_follow_it(mean):
    prior = sbc.PopulationPrior(mean=mean)
    n = np.arange(0, int(40 * mean))
    pmf = np.exp(prior.logpmf(n))
    assert pmf.sum() == pytest.approx(1.0, abs=1e-10)
    assert (pmf * n).sum() == pytest.approx(mean, rel=1e-8)
    assert (pmf * (n - mean) ** 2).sum() == pytest.approx(mean + mean**2 / prior.shape, rel=1e-6)
    # the gamma–Poisson draws have that law: deciles of 20,000 draws against the pmf's
    rng = np.random.default_rng(1)
    draws = np.array([prior.draw(rng) for _ in range(20_000)])
    edges = np.searchsorted(np.cumsum(pmf), np.linspace(0.1, 0.9, 9))
    observed = np.bincount(np.searchsorted(edges, draws, side="left"), minlength=10)
    expected = np.diff(np.concatenate([[0.0], np.cumsum(pmf)[edges], [1.0]])) * draws.size
    assert scipy.stats.chisquare(observed, expected).pvalue > 0.001


@pytest.mark.parametrize("seen, q", [(5, 0.02), (120, 0.6), (900, 0.95)])
def test_n_given_the_parameters_is_the_enumerated_posterior(seen, q):
    """π(N) C(N, n) q^n (1 − q)^(N − n), normalised by brute force, against n + NegBin(a + n, (b + q)/(b + 1));
    and the evidence Σ_N π(N) P(n | N, q) against `log_seen`, up to a constant that is the same for every q."""
    prior = sbc.PopulationPrior(mean=400.0)
    big = np.arange(seen, 60_000)
    log_joint = prior.logpmf(big) + scipy.stats.binom.logpmf(seen, big, q)
    posterior = np.exp(log_joint - scipy.special.logsumexp(log_joint))
    law = scipy.stats.nbinom.pmf(
        big - seen, prior.shape + seen, (prior.rate + q) / (prior.rate + 1)
    )
    assert np.abs(posterior - law).max() < 1e-10
    # the draws are that law
    rng = np.random.default_rng(2)
    draws = prior.unseen(seen, np.full(20_000, q), rng)
    mean = (prior.shape + seen) * (1 - q) / (prior.rate + q)
    assert draws.mean() == pytest.approx(mean, rel=0.03, abs=0.1)

    def constant(q_: float) -> float:
        log_evidence = scipy.special.logsumexp(
            prior.logpmf(big) + scipy.stats.binom.logpmf(seen, big, q_)
        )
        return log_evidence - prior.log_seen(seen, np.log(q_))

    assert constant(q) == pytest.approx(constant(q / 2), abs=1e-8)


def test_a_vanishing_prior_gives_the_familys_own_law_of_n():
    """a, b → 0 (the improper 1/N): the unseen are NegBin(n, q), what the families draw."""
    prior = sbc.PopulationPrior(mean=1e12, shape=1e-9)
    seen, q = 40, 0.3
    rng = np.random.default_rng(3)
    draws = prior.unseen(seen, np.full(50_000, q), rng)
    assert draws.mean() == pytest.approx(seen * (1 - q) / q, rel=0.02)


# --------------------------------------------------------------------------------------------------------------
# ranks


def test_a_rank_counts_the_draws_below_and_breaks_ties_uniformly():
    rng = np.random.default_rng(4)
    assert R.rank_of(np.array([1.0, 2.0, 3.0]), 2.5, rng) == 2
    assert R.rank_of(np.array([3.0, 1.0, 2.0]), 0.0, rng) == 0
    # a posterior that sits on the truth (N = n, everyone seen): the rank is uniform on 0 … L
    draws = np.full(R.DRAWS_PER_RANK, 338)
    ranks = np.array([R.rank_of(draws, 338, rng) for _ in range(20_000)])
    counts = np.bincount(ranks, minlength=R.DRAWS_PER_RANK + 1)
    assert counts.size == R.DRAWS_PER_RANK + 1
    assert scipy.stats.chisquare(counts).pvalue > 0.001
    # and partial ties: 3 draws below, 4 equal, so ranks 3 … 7 with probability 1/5 each
    mixed = np.array([1, 1, 1, 5, 5, 5, 5, 9])
    ranks = np.array([R.rank_of(mixed, 5, rng) for _ in range(5000)])
    assert set(ranks) == {3, 4, 5, 6, 7}


def test_thinning_spreads_the_draws_over_every_chain():
    idx = R.thin(1000, 99)
    assert idx.size == 99 and idx[0] == 0 and idx[-1] == 999 and np.all(np.diff(idx) > 0)
    with pytest.raises(ValueError):
        R.thin(50, 99)


def _conjugate_study(rng, replicates, *, scale=1.0, shift=0.0):
    """SBC of θ ~ N(0, 1), y ~ N(θ, 1), whose posterior is N(y/2, ½): exact when scale = 1 and shift = 0,
    too narrow (scale < 1) or biased (shift ≠ 0) otherwise. Returns the PIT values."""
    theta = rng.normal(size=replicates)
    y = theta + rng.normal(size=replicates)
    draws = (y / 2 + shift)[:, None] + scale * np.sqrt(0.5) * rng.normal(
        size=(replicates, R.DRAWS_PER_RANK)
    )
    ranks = (draws < theta[:, None]).sum(axis=1)  # continuous: no ties
    return R.pit(ranks, R.DRAWS_PER_RANK, rng)


def test_the_rule_passes_a_calibrated_posterior_and_fails_miscalibrated_ones():
    """The rule's error rates on known cases, 200 replicates each: a correct posterior is rejected about α
    of the time, a too-narrow or a shifted one nearly always."""
    rng = np.random.default_rng(5)
    studies = 100
    p_right = [R.band_p_value(_conjugate_study(rng, 200)) for _ in range(studies)]
    rejected = sum(p < R.ALPHA for p in p_right)
    # Binomial(100, 0.05): mean 5, sd 2.2
    assert rejected <= 12
    # the p-value is uniform under the null: a Kolmogorov–Smirnov check
    assert scipy.stats.kstest(p_right, "uniform").pvalue > 0.001
    narrow = [R.band_p_value(_conjugate_study(rng, 200, scale=0.6)) for _ in range(20)]
    shifted = [R.band_p_value(_conjugate_study(rng, 200, shift=0.35)) for _ in range(20)]
    assert sum(p < R.ALPHA for p in narrow) >= 18
    assert sum(p < R.ALPHA for p in shifted) >= 18


def _rows(family, quantities, rng, replicates=200):
    rows = []
    for i in range(replicates):
        for q, make in quantities.items():
            rows.append(
                {
                    "family": family,
                    "replicate": i,
                    "seed": 1,
                    "quantity": q,
                    "rank": 0,
                    "pit": make(rng),
                    "seconds": 1.0,
                    "refit": False,
                    "ess_bulk_min": 500.0,
                    "divergences": 0,
                    "error": "",
                }
            )
    return pd.DataFrame(rows)


def test_a_family_passes_only_when_every_quantity_does_at_the_bonferroni_level():
    rng = np.random.default_rng(6)
    good = _rows("ok", {"N": lambda r: r.random(), "p": lambda r: r.random()}, rng)
    bad = _rows("bad", {"N": lambda r: r.random(), "p": lambda r: r.beta(2.0, 2.0)}, rng)
    verdicts = R.family_verdicts(pd.concat([good, bad], ignore_index=True))
    assert verdicts["ok"]["passed"] and not verdicts["bad"]["passed"]
    assert verdicts["bad"]["quantities"]["N"]["passed"]
    assert not verdicts["bad"]["quantities"]["p"]["passed"]
    assert verdicts["ok"]["level_per_quantity"] == pytest.approx(R.ALPHA / 2)
    assert verdicts["ok"]["replicates"] == 200 and verdicts["ok"]["errors"] == 0
    # an errored replicate is counted, not ranked
    err = good.iloc[[0]].assign(replicate=999, quantity="", pit=np.nan, rank=np.nan, error="boom")
    v = R.family_verdicts(pd.concat([good, err], ignore_index=True))["ok"]
    assert v["errors"] == 1 and v["replicates"] == 200
    assert "| N | 200 |" in R.verdict_markdown({"rule": "x", "families": verdicts})


def test_the_rank_plot_is_arvizs_ecdf_difference_plot_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(7)
    rows = _rows("ok", {"N": lambda r: r.random(), "loglik": lambda r: r.random()}, rng, 100)
    pc = R.rank_plot(rows, title="ok")
    figure = pc.viz["figure"].item()
    assert len([ax for ax in figure.axes if ax.has_data()]) == 2
    assert list(tmp_path.iterdir()) == []
    import matplotlib.pyplot as plt

    plt.close(figure)


# --------------------------------------------------------------------------------------------------------------
# replicates


@pytest.mark.parametrize("family", list(sbc.DESIGNS))
def test_every_design_draws_the_models_free_parameters_and_data_it_accepts(family):
    design = sbc.DESIGNS[family]
    fam = load_all()[family]
    truth, size, data, attempts = sbc.simulate_replicate(design, np.random.default_rng(8))
    assert attempts >= 1 and size >= int(data[fam.observed_name].values.sum()) >= sbc.MIN_SEEN
    model = fam.build(data, None, **design.options)
    free = {
        rv.name: tuple(model.initial_point()[model.rvs_to_values[rv].name].shape)
        for rv in model.free_RVs
    }
    # (transformed values keep their shapes)
    assert set(free) == set(design.parameters)
    for name, shape in design.parameters.items():
        assert np.shape(truth[name]) == shape == free[name]


def test_a_dataset_with_nobody_seen_is_redrawn():
    """Nobody seen: the simulators say so (None) and the replicate draws again, a condition on the data alone
    (replicate 103 of the ztpoisson study saw nobody at its first draw)."""
    nobody = {
        "beta_intercept": np.array(-30.0),
        "logit_p": np.full((1, 6), -30.0),
        "class_weight": np.r_[1.0, np.zeros(sbc_designs.CLASSES - 1)],
        "class_capture": np.full((1, sbc_designs.CLASSES, 4), 1e-12),
    }
    for family in ("ztpoisson", "Mt", "lists_latent_class"):
        assert sbc.DESIGNS[family].simulate(np.random.default_rng(0), 3, nobody) is None
    stream = sbc.replicate_seeds("ztpoisson", 103, sbc.SEED)[0]
    _, size, data, attempts = sbc.simulate_replicate(
        sbc.DESIGNS["ztpoisson"], np.random.default_rng(stream)
    )
    assert attempts == 2 and int(data["frequency"].values.sum()) >= 1


def test_a_replicate_is_the_same_bytes_for_the_same_seed():
    design = sbc.DESIGNS["Mt"]
    seqs = [sbc.replicate_seeds("Mt", 7, 11)[0] for _ in range(2)]
    a, b = (sbc.simulate_replicate(design, np.random.default_rng(s)) for s in seqs)
    assert a[1] == b[1] and a[3] == b[3]
    assert a[2].to_netcdf() == b[2].to_netcdf()
    assert all(np.array_equal(a[0][k], b[0][k]) for k in a[0])
    # another replicate, another family: other streams
    other = sbc.simulate_replicate(
        design, np.random.default_rng(sbc.replicate_seeds("Mt", 8, 11)[0])
    )
    assert other[2].to_netcdf() != a[2].to_netcdf()
    assert sbc.replicate_seeds("M0", 7, 11)[0].entropy != seqs[0].entropy


def test_the_swapped_data_reach_the_prior_on_n_and_the_log_likelihood():
    """The compiled model reads n from the observed counts it is given: its log-likelihood at a truth is the
    zero-truncated Poisson's plus log P(n | θ), for two datasets through one compiled model."""
    design = sbc.DESIGNS["ztpoisson"]
    fam = load_all()["ztpoisson"]
    rng = np.random.default_rng(9)
    truths = []
    for _ in range(2):
        truth, _, data, _ = sbc.simulate_replicate(design, rng)
        while data.sizes["k"] != 8:
            truth, _, data, _ = sbc.simulate_replicate(design, rng)
        truths.append((truth, data))
    model = sbc.SbcModel(design, truths[0][1], backend="jax")
    for truth, data in truths:
        f = data[fam.observed_name].values[0]
        lam = np.exp(float(truth["beta_intercept"]))
        k = np.arange(1, f.size + 1)
        log_cond = scipy.stats.poisson.logpmf(k, lam) - np.log(-np.expm1(-lam))
        expected = (f * log_cond).sum() + design.population.log_seen(
            f.sum(), np.log(-np.expm1(-lam))
        )
        assert model.loglik(truth, data) == pytest.approx(expected, rel=1e-10)


def _fake_replicate(task, **_):
    family, replicate, seed = task
    _fake_replicate.calls.append(replicate)
    return pd.DataFrame(
        [
            {
                "family": family,
                "replicate": replicate,
                "seed": seed,
                "quantity": q,
                "rank": 1,
                "pit": 0.5,
                "seconds": 0.0,
                "error": "",
            }
            for q in ("N", "loglik")
        ],
        columns=sbc.COLUMNS,
    )


_fake_replicate.calls = []


def test_a_resumed_study_skips_the_replicates_it_has(tmp_path, monkeypatch):
    monkeypatch.setattr(sbc, "replicate_rows", _fake_replicate)
    out = tmp_path / "sbc.csv"
    _fake_replicate.calls.clear()
    first = sbc.sbc_study(["ztpoisson", "Mt"], replicates=2, seed=3, out=str(out))
    assert len(first) == 8 and len(pd.read_csv(out)) == 8
    _fake_replicate.calls.clear()
    more = sbc.sbc_study(["ztpoisson", "Mt"], replicates=3, seed=3, out=str(out), resume=True)
    assert sorted(_fake_replicate.calls) == [2, 2]  # only the new replicate of each family
    assert len(more) == 12 and len(pd.read_csv(out)) == 12
    # another seed, or other families, is another study: the file is refused, not mixed
    _fake_replicate.calls.clear()
    for other in ({"families": ["Mt"], "seed": 3}, {"families": ["ztpoisson", "Mt"], "seed": 4}):
        with pytest.raises(EstimInputError, match="made with other options"):
            sbc.sbc_study(
                other["families"], replicates=1, seed=other["seed"], out=str(out), resume=True
            )
    assert _fake_replicate.calls == [] and len(pd.read_csv(out)) == 12
    # without resume an old file is refused, and replaced only with force
    with pytest.raises(EstimInputError, match="--resume.*--force"):
        sbc.sbc_study(["Mt"], replicates=1, seed=3, out=str(out))
    sbc.sbc_study(["Mt"], replicates=1, seed=3, out=str(out), force=True)
    assert _fake_replicate.calls == [0] and len(pd.read_csv(out)) == 2


def test_a_resume_refuses_other_files_and_reruns_failed_replicates(tmp_path, monkeypatch):
    monkeypatch.setattr(sbc, "replicate_rows", _fake_replicate)
    out = tmp_path / "sbc.csv"
    _fake_replicate.calls.clear()
    sbc.sbc_study(["ztpoisson"], replicates=2, seed=3, out=str(out))
    rows = pd.read_csv(out)
    # replicate 1 ran with an error (one row): it is fitted again, not kept as finished
    failed = rows[rows["replicate"] == 0].iloc[[0]].assign(replicate=1, quantity="", error="E: x")
    pd.concat([rows[rows["replicate"] == 0], failed]).to_csv(out, index=False)
    _fake_replicate.calls.clear()
    again = sbc.sbc_study(["ztpoisson"], replicates=2, seed=3, out=str(out), resume=True)
    assert _fake_replicate.calls == [1] and len(again) == 4
    assert (again["error"].fillna("") == "").all()
    # a recovery study's rows, and rows made before they recorded their settings, are not resumed
    recovery = tmp_path / "recovery.csv"
    recovery.write_text("dataset,seed,n_true\n0,1,2000\n")
    with pytest.raises(
        EstimInputError, match="columns are not those of a simulation-based calibration"
    ):
        sbc.sbc_study(["ztpoisson"], replicates=2, seed=3, out=str(recovery), resume=True)
    rows.drop(columns="settings").to_csv(out, index=False)
    with pytest.raises(EstimInputError, match="no 'settings' column"):
        sbc.sbc_study(["ztpoisson"], replicates=2, seed=3, out=str(out), resume=True)
    with pytest.raises(ValueError, match="families named twice: ztpoisson"):
        sbc.sbc_study(["ztpoisson", "ztpoisson"], replicates=1)


def test_a_resumed_study_on_a_client_skips_the_replicates_it_has(tmp_path, monkeypatch):
    """The dask path (an in-process client, whose threads see the mock): rows written as they finish."""
    from distributed import Client

    monkeypatch.setattr(sbc, "replicate_rows", _fake_replicate)
    out = tmp_path / "sbc.csv"
    with Client(processes=False, n_workers=1, threads_per_worker=1, dashboard_address=None) as c:
        sbc.sbc_study(["M0"], replicates=2, out=str(out), client=c)
        _fake_replicate.calls.clear()
        df = sbc.sbc_study(["M0"], replicates=4, out=str(out), resume=True, client=c)
    assert sorted(_fake_replicate.calls) == [2, 3]
    assert df["replicate"].tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    assert len(pd.read_csv(out)) == 8


# --------------------------------------------------------------------------------------------------------------
# slow: a small SBC through the dask runner


@pytest.mark.slow
def test_a_small_sbc_of_m0_on_a_dask_worker_is_calibrated(tmp_path):
    from estim.studies.distributed import study_client

    out = tmp_path / "sbc.csv"
    with study_client(workers=1) as client:
        df = sbc.sbc_study(["M0"], replicates=30, seed=sbc.SEED, out=str(out), client=client)
    assert set(df["quantity"]) == {"N", "logit_p", "loglik"}
    assert len(df) == 90 and df["error"].fillna("").eq("").all()
    assert df["rank"].between(0, R.DRAWS_PER_RANK).all()
    assert df["worker"].str.contains("://").all()
    verdict = R.family_verdicts(df)["M0"]
    assert verdict["replicates"] == 30 and verdict["passed"], verdict
    # the CSV holds the rows, and a resumed study leaves them as they are
    again = sbc.sbc_study(["M0"], replicates=30, seed=sbc.SEED, out=str(out), resume=True)
    pd.testing.assert_frame_equal(
        again[sbc.COLUMNS].reset_index(drop=True),
        pd.read_csv(out)[sbc.COLUMNS].reset_index(drop=True),
        check_dtype=False,
    )


def test_an_sbc_row_s_settings_change_with_the_prior_its_truth_is_drawn_from(monkeypatch):
    # a design's SBC prior changed in code made rows that a resume mixed with the old ones
    import dataclasses

    from estim.priors import Prior
    from estim.studies import sbc as study

    def settings() -> str:
        return study.study_rows(["Mh_darroch"], seed=1, draws_per_rank=99, backend=None).settings()

    before = settings()
    design = study.DESIGNS["Mh_darroch"]
    wider = {**design.priors, "effect": Prior("Normal", mu=0.0, sigma=5.0)}
    monkeypatch.setitem(study.DESIGNS, "Mh_darroch", dataclasses.replace(design, priors=wider))
    assert settings() != before
