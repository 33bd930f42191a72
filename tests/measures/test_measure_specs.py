"""The three measures' specs (models/measures/*.toml): complete, naming only what the border model knows, with
valid priors whose 90 % intervals of the multiplier are plausible, evidence that docs/sources.md holds, and
quantiles in docs/measures.md that match the specs.

Independent of the spec reader (`estim.measures.spec`): the files are read with tomllib and the priors
evaluated with scipy.stats, translated from PyMC's parameterisation here and checked against PyMC's own draws.
"""

from __future__ import annotations

import math
import re
import tomllib

import numpy as np
import pytest
import scipy.stats

from estim.paths import REPO_ROOT
from estim.records.schemas import CATEGORIES, SECTIONS
from estim.simulate.config import POLICY_EVENTS
from estim.simulate.measures import TARGETS

MEASURES = ("permits", "coordination", "faster_checks")
SPEC_DIR = REPO_ROOT / "models" / "measures"
SOURCES = REPO_ROOT / "docs" / "sources.md"
MEASURES_DOC = REPO_ROOT / "docs" / "measures.md"

TOP_KEYS = {
    "name",
    "title",
    "description",
    "start",
    "lag_months",
    "ramp_months",
    "sections",
    "displacement",
    "effects",
}
EFFECT_KEYS = {"name", "target", "multiplier", "prior", "evidence"}  # + categories, analogue
OPTIONAL_EFFECT_KEYS = {"categories", "analogue"}
# PyMC parameter names of the laws a measure's effect size may follow
LAWS = {
    "Beta": ("alpha", "beta"),
    "LogNormal": ("mu", "sigma"),
    "Normal": ("mu", "sigma"),
    "Uniform": ("lower", "upper"),
    "Gamma": ("alpha", "beta"),
}


def read(name: str) -> dict:
    return tomllib.loads((SPEC_DIR / f"{name}.toml").read_text(encoding="utf-8"))


def effects():
    return [(m, e) for m in MEASURES for e in read(m)["effects"]]


def effect_id(item) -> str:
    return f"{item[0]}.{item[1]['name']}"


def scipy_law(prior: dict):
    """The prior as a frozen scipy distribution, from PyMC's parameterisation."""
    p = prior
    match p["distribution"]:
        case "Beta":
            return scipy.stats.beta(p["alpha"], p["beta"])
        case "LogNormal":
            return scipy.stats.lognorm(s=p["sigma"], scale=math.exp(p["mu"]))
        case "Normal":
            return scipy.stats.norm(p["mu"], p["sigma"])
        case "Uniform":
            return scipy.stats.uniform(p["lower"], p["upper"] - p["lower"])
        case "Gamma":
            return scipy.stats.gamma(p["alpha"], scale=1.0 / p["beta"])  # PyMC's beta is a rate
    raise AssertionError(p["distribution"])


def multiplier(effect: dict, value):
    return np.asarray(value) if effect["multiplier"] == "value" else 1.0 - np.asarray(value)


def test_the_three_specs_exist():
    assert sorted(p.stem for p in SPEC_DIR.glob("*.toml")) == sorted(MEASURES)


@pytest.mark.parametrize("name", MEASURES)
def test_spec_has_the_keys_and_known_values(name):
    spec = read(name)
    assert set(spec) == TOP_KEYS
    assert spec["name"] == name
    assert isinstance(spec["title"], str) and spec["title"].strip()
    assert isinstance(spec["description"], str) and len(spec["description"].split()) >= 8
    assert re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", spec["start"])
    for key in ("lag_months", "ramp_months"):
        assert isinstance(spec[key], int) and not isinstance(spec[key], bool) and spec[key] >= 0
    sections = spec["sections"]
    assert sections == "all" or (
        isinstance(sections, list) and sections and set(sections) <= set(SECTIONS)
    )
    assert 0.0 <= spec["displacement"] <= 1.0
    names = [e["name"] for e in spec["effects"]]
    assert names and len(set(names)) == len(names)


@pytest.mark.parametrize("item", effects(), ids=effect_id)
def test_effect_names_known_targets_categories_and_analogues(item):
    _, effect = item
    assert EFFECT_KEYS <= set(effect) <= EFFECT_KEYS | OPTIONAL_EFFECT_KEYS
    assert effect["name"].isidentifier()
    assert effect["target"] in TARGETS
    if effect["target"] == "wait":
        assert "categories" not in effect  # a wait belongs to the checkpoints, not to a category
    else:
        assert effect["categories"] and set(effect["categories"]) <= set(CATEGORIES)
    assert effect["multiplier"] in ("value", "1 - value")
    if "analogue" in effect:
        assert effect["analogue"] in POLICY_EVENTS


@pytest.mark.parametrize("item", effects(), ids=effect_id)
def test_prior_is_an_allowed_law_with_valid_parameters(item):
    _, effect = item
    prior = effect["prior"]
    law = prior["distribution"]
    assert law in LAWS
    assert set(prior) == {"distribution", *LAWS[law]}
    values = {k: prior[k] for k in LAWS[law]}
    assert all(isinstance(v, int | float) and math.isfinite(v) for v in values.values())
    match law:
        case "Beta" | "Gamma":
            assert values["alpha"] > 0 and values["beta"] > 0
        case "LogNormal" | "Normal":
            assert values["sigma"] > 0
        case "Uniform":
            assert values["lower"] < values["upper"]
    if effect["multiplier"] == "1 - value":
        # a share: the multiplier 1 − value is negative wherever value > 1
        assert scipy_law(prior).sf(1.0) < 1e-3


@pytest.mark.parametrize("item", effects(), ids=effect_id)
def test_prior_90_percent_interval_of_the_multiplier_is_within_0_and_3(item):
    _, effect = item
    q05, q95 = scipy_law(effect["prior"]).ppf([0.05, 0.95])
    m = np.sort(multiplier(effect, [q05, q95]))
    assert 0.0 <= m[0] < m[1] <= 3.0
    # honest about uncertainty: the interval is not a point (at least ±10 % around the median)
    median = float(multiplier(effect, scipy_law(effect["prior"]).ppf(0.5)))
    assert m[1] - m[0] > 0.2 * median


@pytest.mark.parametrize("item", effects(), ids=effect_id)
def test_scipy_translation_agrees_with_pymc_draws(item):
    """The quantiles quoted in docs/measures.md are scipy's; PyMC's own draws of the same prior must agree."""
    import pymc as pm

    _, effect = item
    prior = effect["prior"]
    law = prior["distribution"]
    rv = getattr(pm, law).dist(**{k: prior[k] for k in LAWS[law]})
    draws = pm.draw(rv, draws=40_000, random_seed=20260)
    law_scipy = scipy_law(prior)
    for q in (0.05, 0.5, 0.95):
        # the sample quantile's standard error is sqrt(q(1−q)/n)/f(x_q); 5 of them
        x = law_scipy.ppf(q)
        se = math.sqrt(q * (1 - q) / draws.size) / law_scipy.pdf(x)
        assert abs(np.quantile(draws, q) - x) < 5 * se


def measures_section() -> str:
    text = SOURCES.read_text(encoding="utf-8")
    match = re.search(r"^## Measures\n(.*?)(?=^## )", text, flags=re.S | re.M)
    assert match, "docs/sources.md has no section '## Measures'"
    return match.group(1)


@pytest.mark.parametrize("item", effects(), ids=effect_id)
def test_evidence_names_sources_in_docs_sources(item):
    _, effect = item
    keys = re.findall(r"\[([^\]]+)\]", effect["evidence"])
    assert keys, f"{effect_id(item)}: evidence names no [key] of docs/sources.md"
    section = measures_section()
    missing = [k for k in keys if f"| [{k}] |" not in section]
    assert not missing, f"{effect_id(item)}: {missing} are not keys of docs/sources.md, 'Measures'"
    # a quoted heading ('Policy events') must be a heading of docs/sources.md
    headings = re.findall(r"^## (.+)$", SOURCES.read_text(encoding="utf-8"), flags=re.M)
    for quoted in re.findall(r"'([^']+)'", effect["evidence"]):
        assert any(h.startswith(quoted) for h in headings), quoted


def test_every_source_key_is_cited_by_a_spec_or_the_measures_doc():
    keys = re.findall(r"^\| \[([^\]]+)\] \|", measures_section(), flags=re.M)
    assert len(keys) == len(set(keys)) >= 10
    cited = " ".join(e["evidence"] for _, e in effects()) + MEASURES_DOC.read_text(encoding="utf-8")
    assert [k for k in keys if f"[{k}]" not in cited] == []


@pytest.mark.parametrize("item", effects(), ids=effect_id)
def test_measures_doc_quotes_the_specs_quantiles(item):
    _, effect = item
    rows = [
        line
        for line in MEASURES_DOC.read_text(encoding="utf-8").splitlines()
        if line.startswith(f"| `{effect['name']}`")
    ]
    assert len(rows) == 1, f"docs/measures.md: one table row for `{effect['name']}`"
    cells = [c.strip() for c in rows[0].split("|")]
    value_q = scipy_law(effect["prior"]).ppf([0.05, 0.5, 0.95])
    for q in value_q:
        assert f"{q:.3f}" in cells, (effect["name"], f"{q:.3f}", cells)
    for m in multiplier(effect, value_q):
        assert f"{m:.3f}" in cells, (effect["name"], f"{m:.3f}", cells)


def test_spec_comments_state_the_prior_medians():
    """Each prior's comment line in the spec quotes its median; a changed prior must change its comment."""
    for name in MEASURES:
        text = (SPEC_DIR / f"{name}.toml").read_text(encoding="utf-8")
        for effect in read(name)["effects"]:
            block = text.split(f'name = "{effect["name"]}"', 1)[1].split("prior =", 1)[0]
            median = float(scipy_law(effect["prior"]).ppf(0.5))
            assert f"median {median:.2f}" in block, (name, effect["name"], median)


def test_measures_doc_has_the_analogue_table_and_the_caveat():
    doc = MEASURES_DOC.read_text(encoding="utf-8")
    assert "## Priors beside the data" in doc
    table = doc.split("## Priors beside the data", 1)[1].split("\n## ", 1)[0]
    for name in MEASURES:
        assert f"| {name}." in table, name
    assert "estim forecast models/border.nc --analogues" in doc
    assert "does **not** change unobserved crossings" in doc
    assert "## Displacement" in doc
