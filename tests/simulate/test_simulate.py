"""The synthetic border simulator: reproducibility, record schemas, truth accounting, and statistical checks
of the records against the parameters that generated them (docs/simulator.md)."""

import dataclasses

import numpy as np
import pandas as pd
import pytest

from estim import simulate as sim
from estim.io import sha256
from estim.paths import SECTIONS_CSV, SYNTHETIC_DIR
from estim.records.schemas import CATEGORIES, DETECTORS, SCHEMAS, SECTIONS

SURVEYED = {"omsk", "orenburg"}


@pytest.fixture(scope="module")
def default_sim() -> sim.Simulation:
    return sim.simulate(seed=sim.DEFAULT_SEED)


@pytest.fixture(scope="module")
def default_folder(default_sim, tmp_path_factory):
    out = tmp_path_factory.mktemp("default")
    sim.write_simulation(default_sim, out)
    return out


# ---------------------------------------------------------------------------------------------------------
# reproducibility


def test_same_seed_gives_byte_identical_files(default_folder, tmp_path):
    again = tmp_path / "again"
    paths = sim.write_simulation(sim.simulate(seed=sim.DEFAULT_SEED), again)
    assert {p.name for p in paths} == {f"{n}.csv" for n in SCHEMAS} | {
        "truth.nc",
        "README.md",
        "SHA256SUMS",
    }
    assert sim.compare_folders(default_folder, again) == []


def test_truth_netcdf_is_byte_stable_when_rewritten(default_sim, tmp_path):
    # netCDF writers may embed timestamps or library versions; write the same dataset twice, seconds apart
    a, b = tmp_path / "a", tmp_path / "b"
    sim.write_simulation(default_sim, a)
    sim.write_simulation(default_sim, b)
    assert (a / "truth.nc").read_bytes() == (b / "truth.nc").read_bytes()
    assert b"HDF" not in (a / "truth.nc").read_bytes()[:8]  # netCDF3, no library-version attribute


def test_different_seed_differs(tmp_path):
    cfg = sim.SimulationConfig(years=2)
    sim.write_simulation(sim.simulate(seed=1, config=cfg), tmp_path / "a")
    sim.write_simulation(sim.simulate(seed=2, config=cfg), tmp_path / "b")
    differ = sim.compare_folders(tmp_path / "a", tmp_path / "b")
    assert {"apprehensions.csv", "checkpoint_records.csv", "truth.nc", "SHA256SUMS"} <= set(differ)
    assert "sections.csv" not in differ  # the section table is data, not a draw


def test_shipped_synthetic_data_equal_a_fresh_simulation(default_folder):
    assert sim.compare_folders(default_folder, SYNTHETIC_DIR) == [], (
        "regenerate: estim simulate --out data/synthetic"
    )


def test_shipped_checksums_match_files():
    lines = (SYNTHETIC_DIR / "SHA256SUMS").read_text().splitlines()
    names = [line.split("  ", 1)[1] for line in lines]
    assert names == sorted(names)
    assert set(names) == {p.name for p in SYNTHETIC_DIR.iterdir()} - {"SHA256SUMS"}
    for line in lines:
        digest, name = line.split("  ", 1)
        assert sha256(SYNTHETIC_DIR / name) == digest, name
    assert sum(p.stat().st_size for p in SYNTHETIC_DIR.iterdir()) < 20e6


def test_sections_csv_is_written_unchanged(default_folder):
    assert (default_folder / "sections.csv").read_bytes() == SECTIONS_CSV.read_bytes()


def test_readme_labels_data_synthetic(default_folder):
    text = (default_folder / "README.md").read_text()
    assert f"SYNTHETIC data made by `estim simulate --seed {sim.DEFAULT_SEED}`" in text


def test_compare_folders_reports_missing_and_changed(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    (a / "same").write_text("x"), (b / "same").write_text("x")
    (a / "changed").write_text("1"), (b / "changed").write_text("2")
    (a / ".only_a").write_text("")
    assert sim.compare_folders(a, b) == [".only_a", "changed"]


# ---------------------------------------------------------------------------------------------------------
# records against their schemas


def test_record_tables_satisfy_their_schemas(default_sim):
    recs = default_sim.records
    assert set(recs) == set(SCHEMAS)
    for name, schema in SCHEMAS.items():
        frame = recs[name]
        assert tuple(frame.columns) == schema.names, name
        assert len(frame) > 0, name
        for col in schema.columns:
            values = frame[col.name]
            text = values.astype(str)
            assert (text != "").all() or col.nullable, (name, col.name)
            if col.choices:
                assert values.isin(col.choices).all(), (
                    name,
                    col.name,
                    set(values) - set(col.choices),
                )
            if col.pattern:
                assert text.str.fullmatch(col.pattern).all(), (name, col.name)
            if col.kind in ("int", "float"):
                x = values.astype(float)
                if col.minimum is not None:
                    assert (x >= col.minimum).all(), (name, col.name)
                if col.maximum is not None:
                    assert (x <= col.maximum).all(), (name, col.name)
                if col.plausible:
                    assert x.between(*col.plausible).all(), (name, col.name, x.min(), x.max())
            if col.kind == "int":
                assert pd.api.types.is_integer_dtype(values), (name, col.name)
            if col.kind == "bool":
                assert values.isin(["true", "false"]).all(), (name, col.name)
            if col.kind == "date":
                assert text.str.fullmatch(r"\d{4}-\d{2}-\d{2}").all(), (name, col.name)
                assert text.between("2006-01-01", "2017-12-31").all(), (name, col.name)
            if col.kind == "month":
                assert text.str.fullmatch(r"\d{4}-\d{2}").all(), (name, col.name)
            if col.references and col.references.split(".")[0] in recs:
                table, ref = col.references.split(".")
                allowed = set(recs[table][ref]) | ({"*"} if "*" in (col.choices or ()) else set())
                assert values.isin(allowed).all(), (name, col.name)
        for key in schema.unique:
            assert not frame.duplicated(list(key)).any(), (name, key)


def test_sections_table_is_sourced_and_adds_up(default_sim):
    s = default_sim.records["sections"]
    assert list(s["section_id"]) == list(SECTIONS)
    assert s["length_km"].astype(float).sum() == pytest.approx(7512.8)
    counts = s[[f"checkpoints_{k}" for k in ("road", "rail", "air", "river")]].astype(int)
    assert counts.to_numpy().sum() == 50 and counts["checkpoints_road"].sum() == 30
    o = s.set_index("section_id")
    assert float(o.at["orenburg", "length_km"]) == 1876.0
    assert counts.set_index(s["section_id"]).loc["orenburg"].tolist() == [7, 2, 3, 0]
    assert counts.set_index(s["section_id"]).loc["omsk"].tolist() == [4, 2, 1, 1]
    assert set(s.loc[s["surveyed"] == "true", "section_id"]) == SURVEYED
    for col in [c for c in s.columns if c.endswith("_source")]:
        assert (s[col].str.len() > 0).all(), col


def test_person_keys_look_personal_and_identify_one_person(default_sim):
    a = default_sim.records["apprehensions"]
    r = default_sim.records["registers"]
    assert a["person_key"].str.fullmatch(r"PK\d{10}").all()
    assert r["person_key"].str.fullmatch(r"PK\d{10}").all()
    # a person's fixed attributes never change between their records
    per_person = a.groupby("person_key")[
        ["section_id", "category", "citizenship", "border_zone_resident"]
    ]
    assert (per_person.nunique() == 1).all().all()
    # registers hold people never apprehended, including legal entrants with keys of their own
    assert len(set(r["person_key"]) - set(a["person_key"])) > 0
    assert len(set(r["person_key"]) & set(a["person_key"])) > 0


def test_only_surveyed_sections_have_individual_records(default_sim):
    a = default_sim.records["apprehensions"]
    t = default_sim.records["apprehension_totals"]
    assert set(a["section_id"]) == SURVEYED
    assert set(t["section_id"]) == set(SECTIONS) - SURVEYED
    n_months = default_sim.truth.sizes["month"]
    assert len(t) == (len(SECTIONS) - 2) * n_months * len(CATEGORIES) * len(
        DETECTORS
    )  # zeros included


def test_apprehension_ids_are_chronological(default_sim):
    a = default_sim.records["apprehensions"]
    assert a["date"].is_monotonic_increasing
    assert a["apprehension_id"].tolist() == [f"AP{i:07d}" for i in range(1, len(a) + 1)]


def test_policy_events(default_sim):
    p = default_sim.records["policy_events"]
    assert dict(zip(p["kind"], p["start_date"], strict=True)) == {
        "border_residents_agreement": "2009-04-27",
        "customs_union": "2011-07-01",
        "joint_checkpoint_control": "2013-07-30",
    }
    assert (p["section_id"] == "*").all()


# ---------------------------------------------------------------------------------------------------------
# truth


def test_truth_accounting_identities(default_sim):
    t = default_sim.truth
    assert (t["attempts"] == t["apprehensions"] + t["unobserved"]).all()
    assert (t["apprehensions"] == t["apprehensions_by_detector"].sum("detector")).all()
    assert (t["journeys"] == t["unobserved"] + t["abandoned"]).all()
    assert (t["abandoned"] == 0).all() and (t["unobserved"] == t["journeys"]).all()  # r = 1
    assert t.attrs["synthetic"] == "true" and int(t.attrs["seed"]) == sim.DEFAULT_SEED
    assert t.attrs["config"] == default_sim.config.to_json()


def test_records_add_up_to_the_truth(default_sim):
    t = default_sim.truth["apprehensions_by_detector"]
    months = pd.DatetimeIndex(t["month"].values).strftime("%Y-%m")
    truth = t.to_series().rename("truth")
    truth.index = truth.index.set_levels(months, level="month")
    totals = default_sim.records["apprehension_totals"].set_index(
        ["section_id", "month", "category", "detected_by"]
    )["apprehensions"]
    totals.index.names = ["section", "month", "category", "detector"]
    assert (totals == truth.loc[totals.index]).all()
    a = default_sim.records["apprehensions"].assign(month=lambda d: d["date"].str[:7])
    counts = a.groupby(["section_id", "month", "category", "detected_by"]).size()
    counts.index.names = ["section", "month", "category", "detector"]
    surveyed = truth[truth.index.get_level_values("section").isin(SURVEYED)]
    assert (counts.reindex(surveyed.index, fill_value=0) == surveyed).all()
    assert counts.sum() == surveyed.sum()


def test_checkpoint_records_give_the_truth_land_covariates(default_sim):
    cr = default_sim.records["checkpoint_records"].merge(
        default_sim.records["checkpoints"], on="checkpoint_id"
    )
    land = cr[cr["type"] != "air"]
    F = land.groupby(["section_id", "month"])["crossings_foreigners"].sum()
    wf = (
        (land["crossings_foreigners"] * land["mean_wait_minutes"])
        .groupby([land["section_id"], land["month"]])
        .sum()
    )
    truth = default_sim.truth
    months = pd.DatetimeIndex(truth["month"].values).strftime("%Y-%m")
    tF = pd.DataFrame(
        truth["land_foreign_crossings"].values, index=list(SECTIONS), columns=months
    ).stack()
    tw = pd.DataFrame(truth["land_mean_wait"].values, index=list(SECTIONS), columns=months).stack()
    assert (F.loc[tF.index] == tF).all()
    ok = F.loc[tF.index] > 0
    assert np.allclose((wf / F).loc[tF.index][ok], tw[ok])


def test_retry_probability_below_one_keeps_the_accounting(tmp_path):
    cfg = sim.SimulationConfig(years=2, retry_probability=0.5)
    s = sim.simulate(seed=3, config=cfg)
    t = s.truth
    assert (t["attempts"] == t["apprehensions"] + t["unobserved"]).all()
    assert (t["journeys"] == t["unobserved"] + t["abandoned"]).all()
    assert int(t["abandoned"].sum()) > 0
    sim.write_simulation(s, tmp_path)
    assert "non-default configuration" in (tmp_path / "README.md").read_text()


def test_config_rejects_inconsistent_values():
    with pytest.raises(ValueError, match="retry_probability"):
        sim.SimulationConfig(retry_probability=1.5)
    with pytest.raises(ValueError, match="section_effect"):
        sim.SimulationConfig(section_effect={"omsk": 0.0})
    bad = dict(sim.SimulationConfig().recorded_probability)
    bad["smuggler"] = {
        "no_documents": 0.5,
        "invalid_documents": 0.0,
        "regime_violation": 0.0,
        "smuggling": 0.0,
    }
    with pytest.raises(ValueError, match="recorded_probability"):
        sim.SimulationConfig(recorded_probability=bad)


MULTIPLIER_FIELDS = (
    "customs_union_foreign_flow_effect",
    "customs_union_wait_effect",
    "joint_control_wait_effect",
    "customs_union_smuggler_effect",
)


@pytest.mark.parametrize("name", MULTIPLIER_FIELDS)
@pytest.mark.parametrize("value", [-0.5, -1.0, -1e-9, float("nan"), float("inf")])
def test_config_refuses_a_policy_multiplier_below_zero(name, value):
    # a reduction of 150 % (-0.5) or 200 % (-1) failed in numpy's negative binomial ("p <= 0, p > 1 or p contains
    # NaNs") for the flows and smugglers, and gave negative waits without a word for the two wait effects
    with pytest.raises(ValueError) as info:
        sim.SimulationConfig(years=8, **{name: value})
    assert str(info.value).startswith(
        f"SimulationConfig.{name}: {value} is not a multiplier (finite and ≥ 0"
    )


def test_a_reduction_of_100_percent_or_an_increase_of_150_is_simulated():
    cu = np.datetime64("2011-08")  # the first month the customs union is in force all month
    for value in (0.0, 2.5):
        t = sim.simulate(
            seed=1, config=sim.SimulationConfig(years=7, customs_union_smuggler_effect=value)
        ).truth
        after = t["month"].values >= cu
        mu = t["expected_journeys"].sel(category="smuggler")
        assert np.isfinite(t["expected_journeys"].values).all()
        assert float(mu.isel(month=~after).sum()) > 0
        if value == 0.0:
            assert float(mu.isel(month=after).max()) == 0.0
            assert int(t["journeys"].sel(category="smuggler").isel(month=after).sum()) == 0
        else:
            assert float(mu.isel(month=after).sum()) > 0


@pytest.mark.parametrize("value", [0.0, -1.0, float("nan")])
def test_config_refuses_a_negative_binomial_shape_that_is_not_positive(value):
    # the flows' shape φ^L = 0 failed in numpy ("n <= 0"); a category's NaN dispersion passed the check
    with pytest.raises(
        ValueError, match=f"legal_dispersion: {value} is not a negative-binomial shape"
    ):
        sim.SimulationConfig(legal_dispersion=value)
    shapes = dict(sim.SimulationConfig().dispersion, smuggler=value)
    with pytest.raises(ValueError, match=r"dispersion\[smuggler\] must be > 0"):
        sim.SimulationConfig(dispersion=shapes)


def test_negbin_refuses_a_negative_mean_naming_the_rule():
    from estim.simulate.setting import negbin

    rng = np.random.default_rng(0)
    assert negbin(rng, np.array([0.0]), 2.0).tolist() == [0]
    for mean in (-50.0, -2.0, float("nan")):  # -2.0 = -φ divided by zero before numpy refused
        with pytest.raises(
            ValueError, match="need finite means ≥ 0 and finite shapes > 0; got 1 other mean"
        ):
            negbin(rng, np.array([3.0, mean]), 2.0)


# ---------------------------------------------------------------------------------------------------------
# statistical checks against the generating parameters (each could fail if the process were wrong)


def test_espenshade_estimator_recovers_the_true_apprehension_probability(default_sim):
    """Within a section-month an apprehended person's count K is zero-truncated geometric (r = 1), so
    Σ(K−1)/ΣK estimates p. Pooling the cells of a section and category, its expectation is
    Σ n p/(1−p) / Σ n/(1−p) (n = apprehended people in a cell); the delta-method standard error uses
    Var(K−1 | K ≥ 1) = p/(1−p)². Every section × category must lie within 4 standard errors."""
    a = default_sim.records["apprehensions"].assign(month=lambda d: d["date"].str[:7])
    K = (
        a.groupby(["section_id", "month", "category", "person_key"])
        .size()
        .rename("K")
        .reset_index()
    )
    p = default_sim.truth["apprehension_probability"].to_series().rename("p").reset_index()
    p["month"] = p["month"].dt.strftime("%Y-%m")
    K = K.merge(p.rename(columns={"section": "section_id"}), on=["section_id", "month", "category"])
    assert len(K) > 10_000
    z = {}
    for key, g in K.groupby(["section_id", "category"]):
        est = (g["K"] - 1).sum() / g["K"].sum()
        odds = g["p"] / (1 - g["p"])
        target = odds.sum() / (1 / (1 - g["p"])).sum()
        se = np.sqrt((odds / (1 - g["p"])).sum()) / len(g) / (g["K"].mean()) ** 2
        z[key] = (est - target) / se
    assert len(z) == 2 * len(CATEGORIES)
    assert all(abs(v) < 4 for v in z.values()), z


def test_bypass_share_rises_with_waiting_time_as_eta1_says(default_sim):
    """The bypass share is logit-linear in log wait; and the realised bypassers J, regressed on log(w/60)
    with offset log F (Poisson GLM, robust standard errors), give a slope within 4 SE of η1."""
    t = default_sim.truth
    eta0, eta1 = float(t["bypass_eta0"]), float(t["bypass_eta1"])
    assert eta1 > 0
    w = np.maximum(t["land_mean_wait"].values, 0.1)
    share = t["bypass_share"].values
    assert np.allclose(np.log(share / (1 - share)), eta0 + eta1 * np.log(w / 60))

    J = t["journeys"].sel(category="bypasser").values.ravel().astype(float)
    F = t["land_foreign_crossings"].values.ravel().astype(float)
    x = np.log(w.ravel() / 60)
    keep = F > 0
    J, F, x = J[keep], F[keep], x[keep]
    X = np.column_stack([np.ones_like(x), x])
    beta = np.array([np.log(J.sum() / F.sum()), 0.0])
    for _ in range(50):  # Newton-Raphson for the Poisson log-likelihood
        mu = F * np.exp(X @ beta)
        step = np.linalg.solve(X.T @ (mu[:, None] * X), X.T @ (J - mu))
        beta += step
        if np.abs(step).max() < 1e-10:
            break
    mu = F * np.exp(X @ beta)
    bread = np.linalg.inv(X.T @ (mu[:, None] * X))
    meat = X.T @ (((J - mu) ** 2)[:, None] * X)
    se = np.sqrt(np.diag(bread @ meat @ bread))
    # log E J = log F + log expit(z) ≈ log F + z for shares ~1e-3: the slope estimates η1
    assert abs(beta[1] - eta1) < 4 * se[1], (beta[1], se[1], eta1)


def test_journeys_follow_their_expected_means(default_sim):
    """Pearson residuals of J against μ with the negative-binomial variance have mean ~0 and variance ~1."""
    t = default_sim.truth
    for c in CATEGORIES:
        J = t["journeys"].sel(category=c).values.astype(float)
        mu = t["expected_journeys"].sel(category=c).values
        phi = float(t["dispersion"].sel(category=c))
        r = (J - mu) / np.sqrt(mu + mu**2 / phi)
        n = r.size
        assert abs(r.mean()) < 4 / np.sqrt(n), c
        assert 0.8 < r.var() < 1.25, (c, r.var())


# ---------------------------------------------------------------------------------------------------------
# calibration


def test_calibration_to_public_figures_at_the_default_seed(default_sim):
    table = sim.calibration_table(default_sim).set_index("figure")
    structural = {"Sagarchin (Orenburg road): longest December mean wait, hours"}
    counts = table.drop(index=[f for f in table.index if f in structural or "probability" in f])
    assert counts["ratio"].between(0.8, 1.25).all(), counts["ratio"]
    p = table.loc[[f for f in table.index if "probability" in f], "simulated"].iloc[0]
    assert 0.25 < p < 0.6
    truth = default_sim.truth["apprehension_probability"]
    assert 0.2 < float(truth.min()) and float(truth.max()) < 0.7


def test_calibration_doc_is_current(default_sim):
    from estim.paths import REPO_ROOT

    doc = (REPO_ROOT / "docs" / "calibration.md").read_text(encoding="utf-8")
    assert doc == sim.calibration_markdown(default_sim), (
        "run: ./run python scripts/calibration_table.py --out docs/calibration.md"
    )


def test_every_config_field_has_provenance():
    rows = sim.SimulationConfig.provenance()
    assert {r["status"] for r in rows} <= {"sourced", "calibrated", "assumed", "design"}
    assert all(r["note"] for r in rows)
    assert len(sim.assumptions_table()) == len(dataclasses.fields(sim.SimulationConfig))
