"""A measure's declarative spec (``models/measures/NAME.toml``): which parameters of the border model it acts
on, in which sections, from which month, with what ramp, and the prior of each effect size.

    name = "permits"
    title = "Border-zone permits"
    description = "..."
    start = "2018-01"        # first month in force (estim forecast --start replaces it)
    lag_months = 0           # months after start before the effect begins to build
    ramp_months = 12         # months over which it grows linearly to full strength
    sections = "all"         # or a list of section ids
    displacement = 0.0       # share of the journeys it prevents in a section that move to the neighbours

    [[effects]]
    name = "take_up"                     # the effect size's name
    target = "journeys"                  # journeys | guard_hazard | informant_hazard | wait
    categories = ["border_resident"]     # journeys and hazards; omitted for wait
    multiplier = "1 - value"             # "value" or "1 - value": the full-strength multiplier M
    prior = { distribution = "Beta", alpha = 2.0, beta = 3.0 }
    analogue = "border_residents_agreement"   # optional: the policy event whose estimated effect is the analogue
    evidence = "docs/sources.md entries the prior rests on"

The mechanism (what a target means, the ramp, displacement) is `estim.simulate.measures`; the forecasts draw
each effect size from its prior, once per posterior draw, shared by every scenario that contains the measure.
No effect size may give a negative multiplier (a reduction of more than 100 %): a prior whose support reaches
such values is refused (`EffectSpec`), and so is such a value given for a simulation (`MeasureSpec.applied`).
Nor may a prior put its mass where no measure's effect lies, where a percent or a log written in place of a
multiplier puts it: a multiplier whose 90 % interval reaches above `MULTIPLIER_CEILING` (×10), or a LogNormal
one whose median is below `LOGNORMAL_MEDIAN_FLOOR` (0.01, mu < −4.6). A Beta prior (a share, which reads
both ways) must say which multiplier it is; names that are not known are refused with the closest known one
(docs/measures.md, "Writing a measure of your own").
"""

from __future__ import annotations

import difflib
import hashlib
import tomllib
import warnings
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.stats

from estim.errors import EstimInputError
from estim.measures.plausible import MULTIPLIER_CEILING, check_plausible
from estim.paths import REPO_ROOT
from estim.priors import Prior
from estim.records.schemas import CATEGORIES, POLICY_KINDS, SECTIONS
from estim.simulate.measures import TARGETS, AppliedMeasure, MeasureEffect

MEASURES_DIR = REPO_ROOT / "models" / "measures"
BASELINE = "baseline"  # the scenario without measures: no measure may take its name
MULTIPLIERS = ("value", "1 - value")
# Laws an effect size may follow (PyMC names and parameterisation, as in models/*.toml priors). A Normal or
# StudentT is not one: its support, every real number, would reach negative multipliers.
EFFECT_LAWS = ("Beta", "LogNormal", "Uniform", "Gamma", "HalfNormal")
_UNBOUNDED_LAWS = ("Normal", "StudentT")
# Laws whose support includes its finite ends (a share of 0 or 1 is meaningful); for the others (LogNormal,
# Gamma, …) a finite end, such as a multiplier of 0, is outside the support.
_CLOSED_LAWS = ("Beta", "Uniform")
# A lag or ramp longer than this many months (the farthest a forecast reaches beyond the data, the --horizon
# cap of `estim.measures.forecast`) is refused: the measure could never act, or never reach full strength, in
# any forecast; what lands there is days or weeks written as months (365), and a huge one overflowed the
# month arithmetic (an internal error).
LONGEST_MONTHS = 240
# The policy events of the border data (`estim.records.schemas.POLICY_KINDS`) an effect may name as its analogue.
ANALOGUES = tuple(k for k in POLICY_KINDS if k != "other")
_TOP_KEYS = {
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
_EFFECT_KEYS = {"name", "target", "categories", "multiplier", "prior", "analogue", "evidence"}


def meant(given: Any, known: Sequence[Any]) -> str:
    """`` (did you mean `x`?)`` for the name in ``known`` closest to ``given`` (`difflib`, with case, spaces,
    hyphens and a Unicode minus folded: "Omsk" → omsk, "1-value" → 1 - value), or the first that ``given``
    begins ("ramp" → ramp_months); "" when none is close."""

    def fold(text: Any) -> str:
        return str(text).lower().replace("−", "-").replace(" ", "").replace("-", "_")

    if not isinstance(given, str):
        return ""
    folded = {fold(k): str(k) for k in known}
    close = difflib.get_close_matches(fold(given), list(folded), n=1, cutoff=0.6)
    if not close and len(fold(given)) >= 3:  # a name cut short: "ramp" for ramp_months
        close = [k for k in folded if k.startswith(fold(given))][:1]
    return f" (did you mean `{folded[close[0]]}`?)" if close else ""


def _unknown(names: Any, known: Any) -> str:
    """Each unknown name with its did-you-mean: "'lag_month' (did you mean `lag_months`?), 'x'"."""
    return ", ".join(f"{n!r}{meant(n, sorted(known))}" for n in sorted(names, key=str))


def frozen_law(prior: Prior) -> Any:
    """The prior as a frozen scipy.stats distribution (PyMC's parameterisation translated)."""
    p = prior.parameters
    match prior.distribution:
        case "Normal":
            return scipy.stats.norm(p["mu"], p["sigma"])
        case "LogNormal":
            return scipy.stats.lognorm(s=p["sigma"], scale=np.exp(p["mu"]))
        case "Beta":
            return scipy.stats.beta(p["alpha"], p["beta"])
        case "Uniform":
            return scipy.stats.uniform(p["lower"], p["upper"] - p["lower"])
        case "Gamma":
            return scipy.stats.gamma(p["alpha"], scale=1.0 / p["beta"])
        case "HalfNormal":
            return scipy.stats.halfnorm(scale=p["sigma"])
        case "StudentT":
            return scipy.stats.t(p["nu"], p["mu"], p["sigma"])
    raise EstimInputError(
        f"an effect size's prior is one of {', '.join(EFFECT_LAWS)}, got {prior.distribution}"
    )


@dataclass(frozen=True)
class EffectSpec:
    """One effect of a measure: the effect size's prior and how it becomes the multiplier of its target."""

    name: str
    target: str
    categories: tuple[str, ...]
    multiplier: str
    prior: Prior
    analogue: str | None
    evidence: str

    def __post_init__(self) -> None:
        """Refuse a prior that is not a proper law of finite values, or whose support reaches effect sizes
        where the multiplier would be negative (a reduction of more than 100 %, or a negative multiplier): so
        every effect size a forecast or a study draws gives M ≥ 0. A Normal or StudentT prior (support: every
        real number) is thus always refused, a LogNormal or Gamma one under "1 - value" too."""

        def refuse(message: str) -> None:
            raise EstimInputError(f"effect {self.name}: {message}")

        if self.multiplier not in MULTIPLIERS:
            refuse(
                f'multiplier is "value" or "1 - value", got {self.multiplier!r}'
                f"{meant(self.multiplier, MULTIPLIERS)}"
            )
        if self.prior.distribution in _UNBOUNDED_LAWS:
            refuse(
                f"a {self.prior.distribution} prior puts mass on every real number, so on effect sizes "
                "whose multiplier would be negative (a reduction of more than 100 %); use one of "
                f"{', '.join(EFFECT_LAWS)} (e.g. a Beta share, a LogNormal multiplier, a bounded Uniform)"
            )
        if self.prior.distribution not in EFFECT_LAWS:
            refuse(f"the prior is one of {', '.join(EFFECT_LAWS)}, got {self.prior.distribution}")
        for key, value in self.prior.parameters.items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                quoted = " (written without quotes)" if isinstance(value, str) else ""
                refuse(f"prior {key} = {value!r}: a number{quoted}")
        law = (
            f"{self.prior.distribution}"
            f"({', '.join(f'{k}={v!r}' for k, v in self.prior.parameters.items())})"
        )
        lo, hi = self.quantiles([0.0005, 0.9995])
        if not (np.isfinite(lo) and np.isfinite(hi) and hi > lo):
            refuse(
                f"the prior {law} is not a proper distribution of finite values (its 0.05 % and 99.95 % "
                f"quantiles: {lo:.3g}, {hi:.3g}); an effect size needs finite parameters and a spread (e.g. "
                "Uniform with lower < upper)"
            )
        low, high = (float(x) for x in frozen_law(self.prior).support())
        if self.multiplier == "value" and low < 0:
            refuse(
                f"the prior {law} puts mass on effect sizes below 0 (its support: {low:g} to {high:g}), "
                f"where the multiplier M = value of {self.target} would be negative; the prior of a "
                'multiplier must lie in [0, inf) (e.g. LogNormal or Gamma), or give a reduction with "1 - value"'
            )
        if self.multiplier == "1 - value" and high > 1:
            refuse(
                f"the prior {law} puts mass on effect sizes above 1 (its support: {low:g} to {high:g}), "
                f"where the multiplier M = 1 - value of {self.target} would be negative (a reduction of more "
                "than 100 %); the prior of a reduction must lie in (-inf, 1] (e.g. a Beta share, or a "
                "Uniform with upper <= 1)"
            )
        check_plausible(self, law, refuse)

    def value_range(self) -> tuple[float, float, bool]:
        """The effect sizes this effect may take: (low, high, ends included), the support of its prior (a Beta
        share or reduction in [0, 1], a LogNormal multiplier in (0, inf)) cut to where the multiplier is ≥ 0."""
        low, high = (float(x) for x in frozen_law(self.prior).support())
        closed = self.prior.distribution in _CLOSED_LAWS
        if self.multiplier == "value" and low < 0:
            low, closed = 0.0, True
        if self.multiplier == "1 - value" and high > 1:
            high, closed = 1.0, True
        return low, high, closed

    def check_value(self, value: float, label: str) -> None:
        """Refuse an effect size outside `value_range`, the message starting with ``label`` (which names the
        value) and giving the range and its rule."""
        low, high, closed = self.value_range()
        inside = (low <= value <= high) if closed else (low < value < high)
        if not (np.isfinite(value) and inside):
            left, right = ("[", "]") if closed else ("(", ")")
            right = ")" if np.isinf(high) else right
            raise EstimInputError(
                f"{label}: outside its range {left}{low:g}, {high:g}{right} (the support of its "
                f"{self.prior.distribution} prior where {self.target} × ({self.multiplier}) ≥ 0)"
            )

    def multiplier_of(self, value: Any) -> np.ndarray:
        """The full-strength multiplier M of the target at effect size(s) ``value``."""
        value = np.asarray(value, dtype=float)
        return value if self.multiplier == "value" else 1.0 - value

    def value_of(self, multiplier: Any) -> np.ndarray:
        """The effect size whose multiplier is ``multiplier`` (the inverse of `multiplier_of`)."""
        return self.multiplier_of(multiplier)  # both forms are their own inverse

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """n effect sizes from the prior."""
        return np.asarray(frozen_law(self.prior).rvs(size=n, random_state=rng), dtype=float)

    def quantiles(self, probs: Sequence[float] = (0.05, 0.5, 0.95)) -> np.ndarray:
        """The prior's quantiles of the effect size."""
        return np.asarray(frozen_law(self.prior).ppf(probs), dtype=float)


@dataclass(frozen=True)
class MeasureSpec:
    """A measure read from its spec (module docstring); ``digest`` is the SHA-256 of the file's bytes."""

    name: str
    title: str
    description: str
    start: str
    lag_months: int
    ramp_months: int
    sections: tuple[str, ...]
    displacement: float
    effects: tuple[EffectSpec, ...]
    path: str
    digest: str

    def effect(self, name: str) -> EffectSpec:
        for e in self.effects:
            if e.name == name:
                return e
        raise EstimInputError(
            f"measure {self.name} has no effect {name!r}; its effects: "
            f"{', '.join(e.name for e in self.effects)}"
        )

    def applied(
        self,
        values: Mapping[str, float] | None = None,
        start: str | None = None,
        displacement: float | None = None,
    ) -> AppliedMeasure:
        """The measure with known effect sizes (``values`` by effect name; the others at their prior
        medians), as the simulator applies it."""
        values = dict(values or {})
        for name in values:
            self.effect(name)  # unknown names fail here
        effects = []
        for e in self.effects:
            value = float(values.get(e.name, e.quantiles([0.5])[0]))
            e.check_value(value, f"measure {self.name}, effect {e.name} = {value:g}")
            multiplier = float(e.multiplier_of(value))
            if (
                multiplier > MULTIPLIER_CEILING
            ):  # a percent typed for a multiplier: flow=75 for 0.75
                raise EstimInputError(
                    f"measure {self.name}, effect {e.name} = {value:g}: M = {multiplier:g} multiplies "
                    f"{e.target} more than {MULTIPLIER_CEILING:g}-fold, where no measure's effect lies (its "
                    f"prior's median is {float(e.multiplier_of(e.quantiles([0.5])[0])):.3g}); a multiplier "
                    "is a factor, not a percent (a 25 % cut: 0.75)"
                )
            effects.append(MeasureEffect(e.target, multiplier, e.categories))
        return AppliedMeasure(
            name=self.name,
            start_month=start or self.start,
            effects=tuple(effects),
            lag_months=self.lag_months,
            ramp_months=self.ramp_months,
            sections=self.sections,
            displacement=self.displacement if displacement is None else float(displacement),
        )

    def stream(self, effect: str) -> int:
        """A stable id of one effect's random stream (independent of which other measures are forecast)."""
        return zlib.crc32(f"{self.name}/{effect}".encode())


def read_measure(name_or_path: str | Path) -> MeasureSpec:
    """A measure by name (``models/measures/NAME.toml``) or by the path of its spec."""
    text = str(name_or_path)
    path = Path(text)
    known = known_measures()
    # a shipped measure's name is that measure, whatever the working directory holds (a folder or file
    # called "permits" there used to be read instead: an internal error, or another spec); a path is
    # one that says so (a .toml suffix or a directory part), or an existing file of another name
    looks_like_path = path.suffix == ".toml" or len(path.parts) > 1
    if not looks_like_path and (text in known or not path.exists()):
        path = MEASURES_DIR / f"{text}.toml"
        if not path.exists():
            hint = meant(text, ["all", *known]) if text.strip() else ""
            if text.strip() == "all":
                hint = (
                    " ('all' stands alone: it is every shipped measure; list them by name instead)"
                )
            raise EstimInputError(
                f"unknown measure {text!r}{hint}; known: {', '.join(known) or 'none'} (or a path to a "
                ".toml)"
            )
    if path.is_dir():
        raise EstimInputError(
            f"{path}: a directory, not a measure spec; give a .toml file (a measure's spec) or a measure's "
            f"name ({', '.join(known) or 'none'})"
        )
    try:
        raw_bytes = path.read_bytes()
        raw = tomllib.loads(raw_bytes.decode("utf-8"))
    except FileNotFoundError as e:
        shipped = (
            f" (the shipped measure is given by its name: {path.stem})"
            if path.stem in known
            else ""
        )
        raise EstimInputError(f"{path}: no such measure spec{shipped}") from e
    except OSError as e:
        raise EstimInputError(f"{path}: the measure spec cannot be read: {e.strerror or e}") from e
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise EstimInputError(f"{path}: not a valid TOML file: {e}") from e
    spec = parse_measure(raw, source=path, digest=hashlib.sha256(raw_bytes).hexdigest())
    shipped = MEASURES_DIR / f"{spec.name}.toml"
    if (
        spec.name in known
        and path.resolve() != shipped.resolve()
        and raw_bytes != shipped.read_bytes()
    ):
        # the output names a measure by its name only: an edited copy would read as the shipped measure
        warnings.warn(
            f"{path}: the measure is named {spec.name!r}, as a shipped measure, but is not its spec "
            f"({shipped}): the forecast labels it {spec.name!r}; give an edited copy a name of its own",
            UserWarning,
            stacklevel=2,
        )
    return spec


def known_measures() -> list[str]:
    """The names of the measures in models/measures/."""
    return sorted(p.stem for p in MEASURES_DIR.glob("*.toml"))


def read_measures(names: str | Sequence[str]) -> list[MeasureSpec]:
    """Measures by a comma-separated list of names or paths, or ``"all"`` (models/measures/, by name)."""
    given = names if isinstance(names, str) else ",".join(map(str, names))
    if isinstance(names, str):
        names = (
            known_measures() if names.strip() == "all" else [n.strip() for n in names.split(",")]
        )
    specs = [read_measure(n) for n in names if n]
    if not specs:
        known = ", ".join(known_measures()) or "none"
        raise EstimInputError(
            f"--measures {given!r}: no measure given; give "
            f"comma-separated names ({known}), paths to .toml specs, or 'all'"
        )
    # names compared in any letter case: Coordination beside coordination is the measure twice, and the tables'
    # abbreviations (C, C) could not tell them apart
    seen = [s.name.casefold() for s in specs]
    for name in dict.fromkeys(n for n in seen if seen.count(n) > 1):
        same = [s for s in specs if s.name.casefold() == name]
        cased = len({s.name for s in same}) > 1  # then say which is which
        paths = [f"{s.name!r} in {s.path}" if cased else s.path for s in same]
        raise EstimInputError(
            f"measure {name!r} is given {len(paths)} times ({', '.join(paths)}): a forecast takes each "
            "measure once (its scenarios combine them); give it once, or give the other spec another name"
        )
    return specs


def parse_measure(
    raw: Mapping[str, Any], *, source: str | Path = "<measure>", digest: str = ""
) -> MeasureSpec:
    """A measure spec from its parsed TOML; every key checked, errors name the file and the key."""

    def fail(message: str) -> None:
        raise EstimInputError(f"{source}: {message}")

    unknown = set(raw) - _TOP_KEYS
    if unknown:
        fail(f"unknown keys {_unknown(unknown, _TOP_KEYS)}; a measure spec has {sorted(_TOP_KEYS)}")
    for key in ("name", "start", "effects"):
        if key not in raw:
            fail(f"missing {key!r}")
    name = raw["name"]
    if not isinstance(name, str) or not name.isidentifier():
        fail(f"name must be an identifier (letters, digits, _), got {name!r}")
    if name == BASELINE:
        fail(f"name {name!r} is the scenario without measures; give the measure another name")
    start = raw["start"]
    try:
        np.datetime64(str(start), "M")
        if len(str(start)) != 7:
            raise ValueError
    except ValueError:
        fail(f"start must be a month YYYY-MM, got {start!r}")
    integers = {}
    for key in ("lag_months", "ramp_months"):
        value = raw.get(key, 0)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            fail(f"{key} must be a whole number of months >= 0, got {value!r}")
        if value > LONGEST_MONTHS:
            fail(
                f"{key} = {value}: more than {LONGEST_MONTHS} months ({LONGEST_MONTHS // 12} years), further "
                "than any forecast reaches beyond the data; months, not days or weeks (a year is 12)"
            )
        integers[key] = value
    sections = raw.get("sections", "all")
    if sections == "all":
        sections = SECTIONS
    elif isinstance(sections, list) and sections and all(isinstance(s, str) for s in sections):
        bad = [s for s in sections if s not in SECTIONS]
        if bad:
            fail(f"sections: unknown {_unknown(bad, SECTIONS)}; known: {', '.join(SECTIONS)}")
        if len(set(sections)) < len(sections):
            fail(f"sections: {sorted({s for s in sections if sections.count(s) > 1})} given twice")
        sections = tuple(sections)
    else:
        hint = meant(sections, ("all", *SECTIONS))
        if isinstance(sections, str) and sections in SECTIONS:
            hint = f' (one section is a list: sections = ["{sections}"])'
        fail(f'sections must be "all" or a list of section ids, got {sections!r}{hint}')
    displacement = raw.get("displacement", 0.0)
    if (
        isinstance(displacement, bool)
        or not isinstance(displacement, int | float)
        or not 0.0 <= displacement <= 1.0
    ):
        percent = " (a share: 30 % is 0.3)" if isinstance(displacement, int | float) else ""
        fail(f"displacement must be a share in [0, 1], got {displacement!r}{percent}")
    effects_raw = raw["effects"]
    if not isinstance(effects_raw, list) or not effects_raw:
        fail("effects: at least one [[effects]] table")
    effects = tuple(_parse_effect(e, i, fail) for i, e in enumerate(effects_raw))
    names = [e.name for e in effects]
    if len(set(names)) != len(names):
        fail(f"effects: names must be unique, got {names}")
    if displacement > 0 and not any(e.target == "journeys" for e in effects):
        fail(
            f"displacement = {displacement!r}: it moves journeys that a journeys effect prevents, and this "
            f"measure has none (targets: {', '.join(sorted({e.target for e in effects}))}), so it would be "
            "ignored; set displacement = 0 or remove it"
        )
    treated = {SECTIONS.index(s) for s in sections}
    if displacement > 0 and not any(
        i + d not in treated for i in treated for d in (-1, 1) if 0 <= i + d < len(SECTIONS)
    ):
        covered = (
            "every section" if len(treated) == len(SECTIONS) else f"sections {', '.join(sections)}"
        )
        fail(
            f"displacement = {displacement!r}: it moves the journeys the measure prevents in a section to the "
            "neighbouring sections along the border, where they are not prevented again; this measure covers "
            f"{covered}, none with a neighbour it does not cover, so displacement would only give back a share "
            f"{displacement!r} of what it prevents, a weaker effect rather than a move. Restrict sections, or "
            "set displacement = 0 and put the weaker effect in the prior"
        )
    return MeasureSpec(
        name=name,
        title=str(raw.get("title", name)),
        description=" ".join(str(raw.get("description", "")).split()),
        start=str(start),
        lag_months=integers["lag_months"],
        ramp_months=integers["ramp_months"],
        sections=tuple(sections),
        displacement=float(displacement),
        effects=effects,
        path=str(source),
        digest=digest,
    )


def _parse_effect(raw: Any, index: int, fail: Any) -> EffectSpec:
    where = f"effects[{index}]"
    if not isinstance(raw, Mapping):
        fail(f"{where}: a table")
    unknown = set(raw) - _EFFECT_KEYS
    if unknown:
        fail(
            f"{where}: unknown keys {_unknown(unknown, _EFFECT_KEYS)}; an effect has {sorted(_EFFECT_KEYS)}"
        )
    for key in ("name", "target", "prior"):
        if key not in raw:
            fail(f"{where}: missing {key!r}")
    name, target = raw["name"], raw["target"]
    where = f"effects[{index}] ({name})"
    if not isinstance(name, str) or not name.isidentifier():
        fail(f"{where}: name must be an identifier")
    if target not in TARGETS:
        fail(
            f"{where}: target {target!r} is not one of {', '.join(TARGETS)}{meant(target, TARGETS)}"
        )
    if target == "wait":
        if "categories" in raw:
            fail(f"{where}: a wait effect acts on the checkpoints' waits, not on categories")
        categories: tuple[str, ...] = ()
    else:
        given = raw.get("categories", list(CATEGORIES))
        if not isinstance(given, list) or not all(isinstance(c, str) for c in given):
            hint = meant(given, CATEGORIES)
            if given in CATEGORIES:
                hint = f' (one category is a list: categories = ["{given}"])'
            fail(
                f"{where}: categories must be a list of category names (omit it for all of them), got "
                f"{given!r}{hint}"
            )
        categories = tuple(given)
        if len(set(categories)) < len(categories):
            twice = sorted({c for c in categories if categories.count(c) > 1})
            fail(f"{where}: categories: {twice} given twice")
        bad = [c for c in categories if c not in CATEGORIES]
        if bad or not categories:
            fail(
                f"{where}: categories must be some of {', '.join(CATEGORIES)}, got "
                f"{_unknown(bad, CATEGORIES) if bad else '[]'}"
            )
    analogue = raw.get("analogue")
    if analogue is not None and analogue not in ANALOGUES:
        fail(
            f"{where}: analogue {analogue!r} is not a policy event of the border data "
            f"({', '.join(ANALOGUES)}){meant(analogue, ANALOGUES)}"
        )
    multiplier = raw.get("multiplier", "value")
    prior_raw = raw["prior"]
    if not isinstance(prior_raw, Mapping) or "distribution" not in prior_raw:
        fail(f'{where}: prior = {{ distribution = "...", ... }}')
    if "multiplier" not in raw and prior_raw["distribution"] == "Beta":
        fail(
            f'{where}: a Beta prior is a share in [0, 1], which reads two ways: give multiplier = "1 - value" '
            'if it is the reduction (0.2: a 20 % cut) or multiplier = "value" if it is the multiplier itself '
            "(0.2: an 80 % cut)"
        )
    try:
        prior = Prior(
            prior_raw["distribution"], **{k: v for k, v in prior_raw.items() if k != "distribution"}
        )
        # the multiplier's form, the law, and a support giving no negative multiplier (EffectSpec)
        effect = EffectSpec(
            name=name,
            target=target,
            categories=categories,
            multiplier=multiplier,
            prior=prior,
            analogue=analogue,
            evidence=" ".join(str(raw.get("evidence", "")).split()),
        )
    except EstimInputError as e:
        fail(f"{where}: {str(e).removeprefix(f'effect {name}: ')}")
    return effect


def measures_digest(measures: Sequence[MeasureSpec]) -> str:
    """SHA-256 (16 hex) over the measures' spec files: a forecast's provenance."""
    h = hashlib.sha256()
    for m in sorted(measures, key=lambda m: m.name):
        h.update(m.name.encode() + b"\0" + m.digest.encode() + b"\0")
    return h.hexdigest()[:16]
