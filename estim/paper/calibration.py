"""The paper's steps on the computation itself, read from committed study outputs (no fit): simulation-based
calibration of the families (`scripts/sbc.py`) and the border model's race against Stan
(`scripts/stan_race.py`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from estim.paper.context import Context, write_csv
from estim.paper.numbers import Number, write_numbers
from estim.paper.studies import NONE, _require

SBC_COMMAND = (
    "./run python scripts/sbc.py --families ztpoisson Mt lists_latent_class ztgeometric ztnegbin oiztpoisson "
    "oiztgeometric M0 Mb Mh_logitnormal Mh_mixture Mth Mtbh --replicates 200 "
    "--out paper/inputs/sbc/sbc.csv --report paper/inputs/sbc/report.json --workers 1"
)
SBC_BORDER = "sbc_border.csv"
"""The border model's SBC rows, beside the small families' ``sbc.csv`` when that study has run."""
SBC_MORE = "sbc_more.csv"
"""The rows of the families calibrated after the main run (the log-linear families and ztbinomial:
docs/sbc.md), when that study has run; a family there must not also be in ``sbc.csv``."""
SBC_RERUN = "rerun_{family}.csv"
"""An independent rerun of one family (another seed, e.g. ``scripts/sbc.py --families F --seed S --replicates
1000 --out paper/inputs/sbc/rerun_F.csv``): a calibrated family fails the family-wise test at level α by
chance in one run of 1/α, so a failing family is run again, and the table shows both verdicts."""
FIGURE_FAMILIES = ("ztpoisson", "Mt", "lists_latent_class", "border")
"""The families whose ECDF-difference plots the manuscript shows, one of each kind, when they have run."""
MIN_REPLICATES = 20
"""A family enters the table once this many replicates are ranked (a study still running has fewer)."""
STAN_COMMAND = "./run python scripts/stan_race.py --out paper/inputs/stan_race.json"

SBC_COLUMNS = (
    "family",
    "replicates",
    "errors",
    "quantities",
    "level",
    "p_min",
    "p_min_quantity",
    "seconds_per_fit",
    "refits",
    "divergent_fits",
    "verdict",
    "rerun_replicates",
    "rerun_seed",
    "rerun_p_min",
    "rerun_p_min_quantity",
    "rerun_verdict",
)


def sbc_rows(folder: Path) -> tuple[pd.DataFrame, list[Path]]:
    """The SBC rows of every family that has run: ``sbc.csv`` (required), and the border model's file and the
    later families' (`SBC_MORE`), if any."""
    main = _require(folder / "sbc.csv", SBC_COMMAND)
    inputs = [main]
    frames = [pd.read_csv(main)]
    for name in (SBC_BORDER, SBC_MORE):
        path = folder / name
        if path.is_file():
            rows = pd.read_csv(path, low_memory=False)
            twice = sorted(set(rows["family"]) & set(pd.concat(frames)["family"]))
            if twice:
                from estim.errors import EstimInputError

                raise EstimInputError(
                    f"{path}: rows of {', '.join(twice)}, which an earlier SBC file has too: one run a family"
                )
            inputs.append(path)
            frames.append(rows)
    return pd.concat(frames, ignore_index=True), inputs


def sbc_reruns(
    folder: Path, main: pd.DataFrame
) -> tuple[dict[str, tuple[int, pd.DataFrame]], list[Path]]:
    """The independent reruns (`SBC_RERUN`) in ``folder``: family → (its seed, its rows). A rerun must be of
    one family of the main run and with another seed: the same seed recomputes the same replicates (not an
    independent test)."""
    from estim.errors import EstimInputError

    reruns, inputs = {}, []
    prefix, suffix = SBC_RERUN.split("{family}")
    for path in sorted(folder.glob(SBC_RERUN.format(family="*"))):
        family = path.name.removeprefix(prefix).removesuffix(suffix)
        rows = pd.read_csv(path)
        seeds = set(rows["seed"].dropna().astype(int))
        main_seeds = set(main.loc[main["family"] == family, "seed"].dropna().astype(int))
        if set(rows["family"]) != {family} or len(seeds) != 1:
            raise EstimInputError(
                f"{path}: the rows of one run of family {family} (one seed) expected"
            )
        if not main_seeds or seeds & main_seeds:
            raise EstimInputError(
                f"{path}: a rerun of {family} needs that family's main run and another seed than its "
                f"{sorted(main_seeds)}, got {sorted(seeds)}"
            )
        reruns[family] = (seeds.pop(), rows)
        inputs.append(path)
    return reruns, inputs


def _worst(v: dict[str, Any]) -> tuple[float, str]:
    tests = v["quantities"]
    if not tests:
        return float("nan"), ""
    worst = min(tests, key=lambda q: tests[q]["p_band"])
    return tests[worst]["p_band"], worst


def sbc_table(
    verdicts: dict[str, dict[str, Any]],
    reruns: dict[str, tuple[int, dict[str, Any]]] | None = None,
) -> pd.DataFrame:
    """One line per family: replicates ranked, the per-quantity level α/m, the smallest band-test p-value and
    its quantity, the cost, and the verdict ("pass" when every quantity's p is at least α/m); with an
    independent rerun (family → (seed, its verdict)), the rerun's replicates, seed, smallest p and verdict."""
    rows = []
    for family, v in verdicts.items():
        p_min, worst = _worst(v)
        rerun: dict[str, Any] = {}
        if reruns and family in reruns:
            seed, r = reruns[family]
            rerun_p_min, rerun_quantity = _worst(r)
            rerun = {
                "rerun_replicates": r["replicates"],
                "rerun_seed": seed,
                "rerun_p_min": rerun_p_min,
                "rerun_p_min_quantity": rerun_quantity,
                "rerun_verdict": "pass" if r["passed"] else "FAIL",
            }
        rows.append(
            {
                "family": family,
                "replicates": v["replicates"],
                "errors": v["errors"],
                "quantities": len(v["quantities"]),
                "level": v["level_per_quantity"],
                "p_min": p_min,
                "p_min_quantity": worst,
                "seconds_per_fit": v["seconds_per_fit_median"],
                "refits": v["refits"],
                "divergent_fits": v["divergent_fits"],
                "verdict": "pass" if v["passed"] else "FAIL",
                **rerun,
            }
        )
    # counts stay integers beside the families without a rerun (no float 2.02612e+07 for a seed)
    return pd.DataFrame(rows, columns=list(SBC_COLUMNS)).astype(
        {"rerun_replicates": "Int64", "rerun_seed": "Int64"}
    )


def _verdict(family: dict[str, Any] | None) -> str:
    if family is None:
        return NONE  # the study has not run
    return "pass" if family["passed"] else "FAIL"


def sbc(ctx: Context) -> list[Path]:
    """Simulation-based calibration (Talts et al. 2018): per family, the uniformity of the ranks of the truth
    among posterior draws, tested with the simultaneous ECDF band at α/m (`estim.studies.sbc_ranks`); a table of
    the families, ArviZ ECDF-difference (PIT) figures of the families the manuscript shows (`FIGURE_FAMILIES`), and
    the counts the text quotes."""
    from estim.report.figures import save_figure
    from estim.studies.sbc_ranks import ALPHA, DRAWS_PER_RANK, family_verdicts, rank_plot

    rows, inputs = sbc_rows(ctx.paper / "inputs" / "sbc")
    verdicts = {
        family: v
        for family, v in family_verdicts(rows, ALPHA).items()
        if v["replicates"] >= MIN_REPLICATES
    }
    rerun_rows, rerun_inputs = sbc_reruns(ctx.paper / "inputs" / "sbc", rows)
    inputs += rerun_inputs
    reruns = {
        family: (seed, family_verdicts(r, ALPHA)[family])
        for family, (seed, r) in rerun_rows.items()
        if family in verdicts
    }
    table = sbc_table(verdicts, reruns)
    failed = table[table["verdict"] == "FAIL"]
    rerun_text = [
        f"{t.family}: {int(t.rerun_replicates):,} replicates, seed {int(t.rerun_seed)}, smallest p "
        f"{t.rerun_p_min:.3f} ({t.rerun_p_min_quantity}), {t.rerun_verdict}"
        for t in table.itertuples()
        if isinstance(t.rerun_verdict, str) and t.rerun_verdict
    ]
    out = ctx.generated
    paths = [write_csv(table, out / "tables" / "sbc.csv")]
    for family in (
        f for f in FIGURE_FAMILIES if f in verdicts
    ):  # the others: scripts/sbc.py --plots
        figure = rank_plot(rows[rows["family"] == family], ALPHA, title=f"SBC: {family}")
        paths.append(
            save_figure(figure.viz["figure"].item(), out / "figures" / f"sbc_{family}.png")
        )
    numbers = {
        "families": Number(len(table), "deterministic"),
        "passed": Number(int((table["verdict"] == "pass").sum()), "deterministic"),
        "failed": Number(int((table["verdict"] == "FAIL").sum()), "deterministic"),
        "failed_names": Number(", ".join(failed["family"]) or NONE, "deterministic"),
        # failing families whose independent rerun passes
        "failed_rerun_passed": Number(
            int((failed["rerun_verdict"] == "pass").sum()), "deterministic"
        ),
        "reruns": Number("; ".join(rerun_text) or NONE, "deterministic"),
        # failing families without a passing independent rerun: their computation is not shown correct
        "unresolved": Number(int((failed["rerun_verdict"] != "pass").sum()), "deterministic"),
        "unresolved_names": Number(
            ", ".join(failed.loc[failed["rerun_verdict"] != "pass", "family"]) or NONE,
            "deterministic",
        ),
        # the chance that at least one of the families, every one calibrated, fails the test by chance
        "chance_any_fails": Number(1.0 - (1.0 - ALPHA) ** len(table), "deterministic"),
        "names": Number(", ".join(table["family"]), "deterministic"),
        "figures": Number(
            ", ".join(f for f in FIGURE_FAMILIES if f in verdicts) or NONE, "deterministic"
        ),
        "replicates_min": Number(int(table["replicates"].min()), "deterministic"),
        "replicates_max": Number(int(table["replicates"].max()), "deterministic"),
        "alpha": Number(ALPHA, "deterministic"),
        "draws_per_rank": Number(DRAWS_PER_RANK, "deterministic"),
        "border": Number(_verdict(verdicts.get("border")), "deterministic"),
    }
    paths.append(write_numbers(out / "numbers" / "sbc.json", numbers))
    return [ctx.record(p, sbc, inputs) for p in paths]


RACE_COLUMNS = (
    "tool",
    "compile_seconds",
    "warmup_seconds",
    "sampling_seconds",
    "other_seconds",
    "min_bulk_ess",
    "ess_per_second",
    "wall_to_400_ess",
)


def stan_race(ctx: Context) -> list[Path]:
    """The border model fitted by estim (PyMC + nutpie) and by Stan (PyStan) on the same data, priors, chains,
    warm-up and draws: compile, warm-up and sampling seconds, the smallest bulk ESS, ESS per second of
    sampling, the wall time to 400 ESS, estim's ratio to Stan, and whether the two posteriors agree (z-scores
    of the differences of means). Seconds are timings: reported, never verified."""
    source = _require(ctx.paper / "inputs" / "stan_race.json", STAN_COMMAND)
    race = json.loads(source.read_text(encoding="utf-8"))
    rows = []
    for tool, row in race["rows"].items():
        rows.append({"tool": tool, **{c: row.get(c) for c in RACE_COLUMNS[1:]}})
    table = pd.DataFrame(rows, columns=list(RACE_COLUMNS))
    agree, goals, stats = race["agreement"], race["goals"], race["sampler_stats"]

    def timing(x: float) -> Number:
        return Number(float(x), "timing")

    estim_row, stan_row = race["rows"]["estim (nutpie)"], race["rows"]["Stan (PyStan)"]
    numbers = {
        "estim": {k: timing(estim_row[k]) for k in RACE_COLUMNS[1:]},
        "stan": {k: timing(stan_row[k]) for k in RACE_COLUMNS[1:]},
        "ratio": {
            "ess_per_second": timing(goals["ess_per_second_ratio"]),
            "wall_to_400_ess": timing(goals["wall_to_400_ess_ratio"]),
        },
        "goal": {
            "ess_per_second": Number(float(goals["ess_per_second_goal"]), "deterministic"),
            "wall_to_400_ess": Number(float(goals["wall_to_400_ess_goal"]), "deterministic"),
        },
        "agreement": {
            "elements": Number(int(agree["elements"]), "deterministic"),
            "share_beyond_2": Number(float(agree["share_beyond_2"]), "deterministic"),
            "count_beyond_4": Number(int(agree["count_beyond_4"]), "deterministic"),
            "verdict": Number("agree" if agree["passed"] else "differ", "deterministic"),
        },
        "divergences": {
            "estim": Number(int(stats["estim (nutpie)"]["divergences"]), "deterministic"),
            "stan": Number(int(stats["Stan (PyStan)"]["divergences"]), "deterministic"),
        },
        "steps_per_draw": {
            "estim": timing(stats["estim (nutpie)"]["leapfrog_steps_per_draw"]),
            "stan": timing(stats["Stan (PyStan)"]["leapfrog_steps_per_draw"]),
        },
        **{
            k: Number(int(race["estim"]["settings"][k]), "deterministic")
            for k in ("chains", "tune", "draws")
        },
    }
    out = ctx.generated
    paths = [
        write_csv(table, out / "tables" / "stan_race.csv"),
        write_numbers(out / "numbers" / "stan_race.json", numbers),
    ]
    return [ctx.record(p, stan_race, [source]) for p in paths]
