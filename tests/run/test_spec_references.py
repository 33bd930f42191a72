"""Every benchmark spec in models/ that names its reference names one that exists (the paper's validation
table is made from these names)."""

import re
import tomllib

import pytest

from estim.paths import REPO_ROOT

REFERENCES = tomllib.loads(
    (REPO_ROOT / "data" / "benchmarks" / "references.toml").read_text(encoding="utf-8")
)
SPECS = sorted((REPO_ROOT / "models").glob("*.toml"))


@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_named_reference_exists(path):
    text = path.read_text(encoding="utf-8")
    if "references.toml" not in text:
        return
    found = re.search(r"references\.toml, ([\w.]+)\)", text)
    assert found, (
        f"{path.name}: write the reference as (data/benchmarks/references.toml, DATASET.estimates.KEY)"
    )
    dataset, estimates, key = found.group(1).split(".", 2)
    assert estimates == "estimates" and key in REFERENCES[dataset]["estimates"], found.group(1)
