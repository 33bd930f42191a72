"""Model specs: one small declarative TOML file per named model (``models/NAME.toml``).

A spec says which family to fit to which data, with which priors, sampler settings and seed — everything a
reviewer needs to see, and everything that decides the fit. It is validated when read: an error names the file
and the field (``models/x.toml: [sampler] chains: expected an integer ≥ 1, got 'four'``).

Format::

    name = "netherlands_ztpoisson"          # optional; defaults to the file name without .toml
    family = "ztpoisson"                    # a registered family (estim.families.FAMILIES)
    description = "…"                       # optional, free text
    seed = 20031                            # integer ≥ 0; decides every random draw of the fit

    [data]                                  # exactly one of benchmark, records or file; then the family's fields
    benchmark = "netherlands_immigrants"    # a dataset in data/benchmarks/ (references.toml)
    # file = "my_data.csv"                  # or your own table: CSV (UTF-8) or Parquet, relative to the
    #                                       #   spec's folder or absolute
    # records = "data/synthetic"            # or a record folder, relative to the spec's folder or its parent
    layout = "individuals"                  # the family's fields: how the table is laid out, its columns …
    covariates = ["gender", "age"]

    The fields after the source are the family's own (`Family.data.fields`, checked by the family's
    ``DataKind.check``, which is told the source: "benchmark", "records" or "file"). A file is read by
    `estim.run.data.read_table` and handed to the family exactly as a benchmark table is. A field only
    records read (section, period, period_kind, and a family's own "records: …" one, as occasion or category)
    written for a table is refused: the table is fitted as a whole, and it would be ignored.

    [priors]                                # optional overrides of the family's default priors, each
                                            #   keeping its parameter's support (priors.check_override)
    beta_intercept = { distribution = "Normal", mu = 0, sigma = 2 }

    [sampler]                               # optional; these are the defaults
    draws = 1000                            # each at most 1,000,000 a chain (MAX_DRAWS)
    tune = 1000                             # warm-up, at least 1 (nutpie cannot adapt without it)
    chains = 4                              # at most 64
    target_accept = 0.9
    backend = "jax"                         # nutpie backend: "jax" (fast compile) or "numba"
    prior_draws = 500                       # prior predictive draws
    retries = 2                             # when the diagnostics gate fails: refit at a higher
                                            #   target_accept with twice the draws, at most this often
                                            # a family whose posterior is computed exactly (lists_bma)
                                            #   takes only draws, chains and retries: no NUTS

    [options]                               # optional keyword arguments passed to the family; one it
                                            #   does not take (Family.option_names) is an error, as is
                                            #   a value its Option does not allow (a string for a number)
                                            #   and one its model would not read (Family.idle_options_in)

A misspelt key is refused naming the closest one its table has (``[sampler] tunes``: did you mean ``tune``?), and
so is a known ``[data]`` field given a list that its near namesake takes (``occasion = [...]``: ``occasions``),
and a prior's law (``Halfnormal``: ``HalfNormal``).

The spec hash is the SHA-256 of the canonical JSON of the parsed spec (defaults filled in), so reformatting
the file or adding comments does not invalidate a cached fit, while any change of meaning does. A ``[data]``
field added after fits of its kind were saved (`DataField.hashed_at_default` False) is left out at its default,
so that those fits keep their hash.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from estim.errors import EstimInputError, did_you_mean
from estim.families.base import PERIOD, PERIOD_KIND, SECTION, DataField, DataFieldError, DataKind
from estim.priors import Prior, check_override, merge_priors

BACKENDS = ("jax", "numba")
MAX_RETRIES = 4
# Ceilings of [sampler]'s counts: far above any fit's needs (1,000 draws a chain is the default; the exact
# families' independent draws a few thousand), low enough that a typo (draws = 10000000000) is refused rather
# than left to run for hours or to exhaust memory. A retry doubles draws and warm-up (at most MAX_RETRIES
# times).
MAX_DRAWS = 1_000_000
MAX_CHAINS = 64
ADAPTATIONS = ("diagonal", "low_rank")
_TOP_LEVEL = {"name", "family", "description", "seed", "data", "priors", "sampler", "options"}
_SOURCES = ("benchmark", "records", "file")
# [sampler] settings of NUTS alone: a family whose posterior is computed exactly (Family.exact) draws
# independently, taking only draws, chains and retries
_NUTS_ONLY = ("tune", "target_accept", "backend", "adaptation", "prior_draws")
# A table handed over from Python (`estim.run.fit.fit_table`): recorded under this key, never read from a spec.
TABLE_SOURCE = "table"


@dataclass(frozen=True)
class DataSpec:
    """Where the sufficient statistics come from (a shipped benchmark, a record folder, a CSV or Parquet
    file, or a table given from Python), and the family's own ``[data]`` fields
    (`estim.families.base.DataKind`), every field present with its default filled in.

    ``table`` describes an in-memory table (`estim.run.fit.fit_table`); such data cannot be re-read later.
    """

    benchmark: str | None = None
    records: str | None = None
    fields: Mapping[str, Any] = field(default_factory=dict)
    file: str | None = None
    table: str | None = None
    # the fields added after fits of their kind were saved (`DataField.hashed_at_default` False), with their
    # defaults: left out of to_dict while at them, so those fits keep their hash
    unhashed_defaults: Mapping[str, Any] = field(default_factory=dict, compare=False)

    @property
    def source(self) -> str:
        """Where the data come from: "benchmark", "records", "file" or "table"."""
        for name in (*_SOURCES, TABLE_SOURCE):
            if getattr(self, name) is not None:
                return name
        raise AssertionError("a DataSpec always has a source")

    def to_dict(self) -> dict[str, Any]:
        # file and table only when set: the specs written before them keep their hash
        out: dict[str, Any] = {"benchmark": self.benchmark, "records": self.records}
        out.update({k: getattr(self, k) for k in ("file", TABLE_SOURCE) if getattr(self, k)})
        quiet = self.unhashed_defaults
        fields = {
            k: v
            for k, v in self.fields.items()
            if k not in quiet or (type(v), v) != (type(quiet[k]), quiet[k])
        }
        return {**out, **fields}


@dataclass(frozen=True)
class SamplerSpec:
    """NUTS settings (nutpie). ``prior_draws`` is the size of the prior predictive sample."""

    draws: int = 1000
    tune: int = 1000
    chains: int = 4
    target_accept: float = 0.9
    backend: str = "jax"
    prior_draws: int = 500
    # nutpie's mass-matrix adaptation: "diagonal", or "low_rank" for strongly correlated posteriors
    adaptation: str = "diagonal"
    # attempts after one that fails the diagnostics gate (estim.run.fit.retry_settings); 0: none
    retries: int = 2

    def to_dict(self) -> dict[str, Any]:
        return {
            "draws": self.draws,
            "tune": self.tune,
            "chains": self.chains,
            "target_accept": self.target_accept,
            "backend": self.backend,
            "prior_draws": self.prior_draws,
            "adaptation": self.adaptation,
            "retries": self.retries,
        }


@dataclass(frozen=True)
class ModelSpec:
    """A validated model spec. `path` (where it was read from) is not part of its meaning or hash."""

    name: str
    family: str
    data: DataSpec
    seed: int
    priors: Mapping[str, Prior] = field(default_factory=dict)
    sampler: SamplerSpec = field(default_factory=SamplerSpec)
    options: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""
    path: Path | None = field(default=None, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """The parsed spec as plain data (what the hash is computed from)."""
        return {
            "name": self.name,
            "family": self.family,
            "description": self.description,
            "seed": self.seed,
            "data": self.data.to_dict(),
            "priors": {k: self.priors[k].to_dict() for k in sorted(self.priors)},
            "sampler": self.sampler.to_dict(),
            "options": dict(self.options),
        }

    def canonical_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), default=str)

    @property
    def spec_hash(self) -> str:
        """SHA-256 of the canonical JSON of the parsed spec."""
        return hashlib.sha256(self.canonical_json().encode("utf-8")).hexdigest()

    def default_output(self) -> Path:
        """``NAME.nc`` beside the spec file (the current folder for a spec not read from a file). Refused
        (`EstimInputError`) when another spec file beside it is NAME.toml (a spec copied to a new file with its
        name kept): the fit would replace that spec's fit, and be read as it."""
        folder = self.path.parent if self.path is not None else Path.cwd()
        owner = folder / f"{self.name}.toml"
        if self.path is not None and owner.is_file() and owner.resolve() != self.path.resolve():
            raise EstimInputError(
                f"{self.path}: name = {self.name!r} is the name of {owner.name} beside it, so this spec's "
                f"fit would be saved as {self.name}.nc, over that spec's fit, and read as its fit; give this "
                "spec a name of its own (or none: it is then named after its file), or save the fit "
                "elsewhere (estim fit --out FILE)"
            )
        return folder / f"{self.name}.nc"


def read_spec(path: str | Path) -> ModelSpec:
    """Read and validate a spec file; `EstimInputError` naming the file and field on any problem."""
    path = Path(path)
    if not path.is_file():
        raise EstimInputError(f"{path}: no such spec file")
    raw_bytes = path.read_bytes()
    if raw_bytes.startswith((b"\x89HDF", b"CDF")):
        raise EstimInputError(
            f"{path}: a fit (a netCDF file), not a model spec: `estim summary {path}` reads it; give the "
            "spec (.toml) it was fitted from"
        )
    # the first line that is not blank or a comment: a spec's opening comment may hold commas
    lines = [ln for ln in raw_bytes.splitlines() if ln.strip() and not ln.lstrip().startswith(b"#")]
    first_line = lines[0] if lines else b""
    looks_like_table = path.suffix.lower() in (".csv", ".tsv") or (
        b"=" not in first_line and any(sep in first_line for sep in (b",", b";", b"\t"))
    )
    try:
        raw = tomllib.loads(raw_bytes.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise EstimInputError(
            f"{path}: not a model spec: not UTF-8 text (byte {e.start} is 0x{raw_bytes[e.start]:02x}); "
            "a spec is a TOML text file (models/NAME.toml)"
        ) from e
    except tomllib.TOMLDecodeError as e:
        if looks_like_table:
            raise EstimInputError(
                f"{path}: looks like a data table, not a model spec; the spec is a .toml file that names "
                f'the table ([data] file = "{path.name}") and the family to fit'
            ) from e
        raise EstimInputError(f"{path}: not valid TOML: {e}") from e
    return parse_spec(raw, source=path)


def parse_spec(
    raw: Mapping[str, Any], *, source: str | Path = "<spec>", allow_table: bool = False
) -> ModelSpec:
    """Validate a spec already parsed from TOML (a mapping); `source` names it in error messages.

    `allow_table` admits ``[data] table = "<description>"``, an in-memory table given from Python
    (`estim.run.fit.fit_table`) in place of benchmark / records / file.
    """
    from estim.families.registry import load_all

    src = str(source)

    def fail(where: str, message: str) -> EstimInputError:
        return EstimInputError(f"{src}: {where}: {message}")

    unknown = sorted(set(raw) - _TOP_LEVEL)
    if unknown:
        raise fail(
            ", ".join(unknown),
            f"unknown field(s){did_you_mean(unknown, _TOP_LEVEL)}; a spec has: "
            f"{', '.join(sorted(_TOP_LEVEL))}",
        )

    default_name = Path(src).stem if isinstance(source, Path) else "model"
    name = _get(raw, "name", str, fail, "name", default=default_name)
    if not name or any(c in name for c in "/\\") or name.startswith("."):
        raise fail("name", f"not usable as a file name: {name!r}")
    description = _get(raw, "description", str, fail, "description", default="")

    if "family" not in raw:
        raise fail("family", "missing (the model family to fit)")
    family_name = _get(raw, "family", str, fail, "family")
    families = load_all()
    if family_name not in families:
        known = ", ".join(sorted(families)) or "none registered"
        raise fail("family", f"unknown family {family_name!r}; known: {known}")
    family = families[family_name]

    if "seed" not in raw:
        raise fail("seed", "missing (an integer ≥ 0; every random draw of the fit follows from it)")
    seed = _get(raw, "seed", int, fail, "seed")
    if seed < 0:
        raise fail("seed", f"must be ≥ 0, got {seed}")

    data = _parse_data(raw.get("data"), fail, family.data, allow_table=allow_table)
    priors = _parse_priors(raw.get("priors", {}), fail)
    try:
        merge_priors(family.default_priors, priors)
    except EstimInputError as e:
        unknown = sorted(set(priors) - set(family.default_priors))
        raise fail("[priors]", f"{e}{did_you_mean(unknown, family.default_priors)}") from e
    for prior_name, prior in priors.items():
        try:
            check_override(prior_name, prior, family.default_priors)
        except EstimInputError as e:
            raise fail(f"[priors] {prior_name}", str(e)) from e
    sampler = _parse_sampler(raw.get("sampler", {}), fail)
    nuts = [k for k in _NUTS_ONLY if k in raw.get("sampler", {})]
    if family.exact is not None and nuts:
        raise fail(
            f"[sampler] {', '.join(nuts)}",
            f"family {family_name!r} has its posterior computed exactly and drawn from independently (no "
            "NUTS), so this would be ignored; its [sampler] takes only draws, chains and retries",
        )
    options = raw.get("options", {})
    if not isinstance(options, Mapping):
        raise fail("[options]", f"expected a table, got {type(options).__name__}")
    accepted = family.option_specs()
    known = {*(accepted or ()), *family.idle_options}
    unknown = sorted(set(options) - known) if accepted is not None else []
    if unknown:
        assert accepted is not None
        takes = f"it takes {', '.join(accepted)}" if accepted else "it takes none"
        raise fail(
            f"[options] {', '.join(unknown)}",
            f"unknown option(s) for family {family_name!r}{did_you_mean(unknown, accepted)}: {takes}",
        )
    for option_name, value in options.items():
        option = (accepted or {}).get(option_name)
        why = option.problem(value) if option is not None else None
        if why is not None:
            raise fail(f"[options] {option_name}", why)
    # one the model would not read (nodes of a model without an integral, centered without stratified)
    for option_name, why in family.idle_options_in(options).items():
        raise fail(f"[options] {option_name}", why)

    return ModelSpec(
        name=name,
        family=family_name,
        data=data,
        seed=seed,
        priors=priors,
        sampler=sampler,
        options=dict(options),
        description=description,
        path=Path(source) if isinstance(source, Path) else None,
    )


# --------------------------------------------------------------------------------------------------------------


def _get(
    table: Mapping[str, Any],
    key: str,
    kind: type,
    fail: Any,
    where: str,
    default: Any = ...,
) -> Any:
    if key not in table:
        if default is ...:
            raise fail(where, "missing")
        return default
    value = table[key]
    ok = isinstance(value, kind) and not (kind in (int, float) and isinstance(value, bool))
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value, ok = float(value), True
    if not ok:
        names = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}
        raise fail(where, f"expected {names.get(kind, kind.__name__)}, got {value!r}")
    return value


def _str_list(value: Any, fail: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise fail(where, f"expected a list of strings, got {value!r}")
    if len(set(value)) != len(value):
        raise fail(where, f"repeated entries in {value!r}")
    return tuple(value)


def _parse_data(table: Any, fail: Any, kind: DataKind, *, allow_table: bool = False) -> DataSpec:
    """The ``[data]`` table: exactly one source, then the family's own fields, checked by the family."""
    sources = (*_SOURCES, TABLE_SOURCE) if allow_table else _SOURCES
    if table is None:
        raise fail("[data]", 'missing (set benchmark = "…", records = "…" or file = "…")')
    if not isinstance(table, Mapping):
        raise fail("[data]", f"expected a table, got {type(table).__name__}")
    known = {*sources, *kind.field_names()}
    unknown = sorted(set(table) - known)
    if unknown:
        raise fail(
            f"[data] {', '.join(unknown)}",
            f"unknown field(s) for {kind.name} data{did_you_mean(unknown, known)}; [data] has: "
            f"{', '.join(sorted(known))}",
        )
    source = {k: _get(table, k, str, fail, f"[data] {k}", default=None) for k in sources}
    given = [k for k, v in source.items() if v is not None]
    if len(given) != 1:
        also = f" (got {', '.join(given)})" if given else ""
        raise fail(
            "[data]",
            f'give exactly one of benchmark = "…", records = "…" or file = "…"{also}',
        )
    if source["benchmark"] is not None:
        from estim.benchmarks import reference_estimates

        benchmarks = reference_estimates()
        if source["benchmark"] not in benchmarks:
            raise fail(
                "[data] benchmark",
                f"unknown benchmark {source['benchmark']!r}; known: {', '.join(sorted(benchmarks))}",
            )
    if source["file"] is not None and not source["file"].strip():
        raise fail("[data] file", "empty path (a CSV or Parquet file, relative to the spec)")
    if source["records"] is not None and not source["records"].strip():
        raise fail(
            "[data] records",
            "empty path (a record folder, relative to the spec's folder or its parent)",
        )
    fields: dict[str, Any] = {}
    for f in kind.fields:
        try:
            fields[f.name] = _field_value(table, f, fail, f"[data] {f.name}")
        except EstimInputError as e:
            # a one-column field given a list (occasion = [...] for occasions): say which was meant
            others = [g.name for g in kind.fields if g.many and not f.many and g.name != f.name]
            hint = did_you_mean(f.name, others) if isinstance(table.get(f.name), list) else ""
            if not hint:
                raise
            raise EstimInputError(f"{e}{hint}") from e
    unhashed = {f.name: f.default for f in kind.fields if not f.hashed_at_default}
    spec = DataSpec(fields=fields, unhashed_defaults=unhashed, **source)
    try:
        # a table given from Python is read like a file
        kind.check(fields, "file" if spec.source == TABLE_SOURCE else spec.source)
    except DataFieldError as e:
        raise fail(f"[data] {e.field}", e.message) from e
    except TypeError as e:  # a number where this family takes a list of columns
        numbers = [f.name for f in kind.fields if f.many and isinstance(fields[f.name], int)]
        if not numbers:
            raise
        raise fail(
            f"[data] {numbers[0]}", f"expected a list of strings, got {fields[numbers[0]]!r}"
        ) from e
    # checked against what the spec writes: the defaults filled in above cannot be told from a written value
    written = sorted(f.name for f in kind.fields if _records_only(f) and f.name in table)
    if spec.source != "records" and written:
        read = {
            "benchmark": f'benchmark "{spec.benchmark}"',
            "file": f'the file "{spec.file}"',
            TABLE_SOURCE: "a table given from Python",
        }[spec.source]
        it, them = ("it", "it") if len(written) == 1 else ("they", "them")
        raise fail(
            f"[data] {', '.join(written)}",
            f'only for records (records = "…"); this spec reads {read}, a table fitted as a whole, so '
            f"{it} would be ignored: remove {them}",
        )
    return spec


def _records_only(f: DataField) -> bool:
    """A ``[data]`` field that only records read: the section, period and period length every family reading
    records shares (`estim.families.base`), and a family's own declared ``"records: …"`` (the closed
    families' occasion, the single-register families' category)."""
    return f in (SECTION, PERIOD, PERIOD_KIND) or f.description.startswith("records:")


def without_defaults(raw: Mapping[str, Any]) -> dict[str, Any]:
    """A parsed spec as plain data (`ModelSpec.to_dict`, every default written out) with the ``[data]`` fields
    and ``[sampler]`` settings at their defaults left out, as a spec file omits them: so it reads again
    (`parse_spec` refuses a written records-only field for a table, a NUTS setting for an exact family)."""
    from estim.families.registry import load_all

    out = dict(raw)
    family = load_all().get(out.get("family"))  # type: ignore[arg-type]
    data, sampler = out.get("data"), out.get("sampler")
    if family is not None and isinstance(data, Mapping):
        defaults = {
            f.name: list(f.default) if isinstance(f.default, tuple) else f.default
            for f in family.data.fields
        }
        out["data"] = {
            k: v
            for k, v in data.items()
            if k not in defaults or (list(v) if isinstance(v, tuple) else v) != defaults[k]
        }
    if isinstance(sampler, Mapping):
        filled = SamplerSpec().to_dict()
        out["sampler"] = {k: v for k, v in sampler.items() if k not in filled or v != filled[k]}
    return out


def _field_value(table: Mapping[str, Any], f: Any, fail: Any, where: str) -> Any:
    """One family field: a string (or a value of the field's ``kind``: a whole number, true or false), or for a
    ``many`` field a list of strings (columns) or a number (e.g. of occasions, an integer or ``inf``, where the
    family takes one: its ``check`` decides); its default when absent."""
    if f.name not in table:
        return tuple(f.default) if f.many and f.default is not None else f.default
    value = table[f.name]
    if f.many and isinstance(value, int) and not isinstance(value, bool):
        return value
    if f.many and (value == float("inf") or str(value).strip().lower() == "inf"):
        return "inf"
    if f.many:
        # a field of columns that may also be a count (occasions = 6, trials = 6): say how to write the number
        if isinstance(value, float) and value.is_integer():
            raise fail(
                where,
                f"expected a whole number written without a decimal point "
                f"({int(value)}), got {value!r}",
            )
        if isinstance(value, str) and value.strip().isdigit():
            raise fail(
                where,
                f"expected a number written without quotes ({value.strip()}), got {value!r}",
            )
        if isinstance(value, str):
            raise fail(where, f"expected a list of strings, got {value!r}")
        return _str_list(list(value) if isinstance(value, tuple) else value, fail, where)
    return _get(table, f.name, f.kind, fail, where)


def _parse_priors(table: Any, fail: Any) -> dict[str, Prior]:
    if not isinstance(table, Mapping):
        raise fail("[priors]", f"expected a table, got {type(table).__name__}")
    priors = {}
    for name, value in table.items():
        if not isinstance(value, Mapping):
            raise fail(
                f"[priors] {name}",
                f'expected a table like {{ distribution = "Normal", mu = 0, sigma = 1 }}, got {value!r}',
            )
        try:
            priors[name] = Prior.from_dict(value)
        except EstimInputError as e:
            raise fail(f"[priors] {name}", str(e)) from e
    return priors


def _parse_sampler(table: Any, fail: Any) -> SamplerSpec:
    if not isinstance(table, Mapping):
        raise fail("[sampler]", f"expected a table, got {type(table).__name__}")
    defaults = SamplerSpec()
    allowed = set(defaults.to_dict())
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise fail(
            f"[sampler] {', '.join(unknown)}",
            f"unknown field(s){did_you_mean(unknown, allowed)}; [sampler] has: "
            f"{', '.join(sorted(allowed))}",
        )
    values: dict[str, Any] = {}
    for key in ("draws", "tune", "chains", "prior_draws", "retries"):
        values[key] = _get(
            table, key, int, fail, f"[sampler] {key}", default=getattr(defaults, key)
        )
        minimum = 0 if key == "retries" else 1
        if values[key] < minimum:
            why = (
                " (nutpie's NUTS adapts its step size and mass matrix during warm-up and cannot start "
                "without it; a few hundred steps is usual)"
                if key == "tune"
                else ""
            )
            raise fail(
                f"[sampler] {key}", f"expected an integer ≥ {minimum}, got {values[key]}{why}"
            )
        ceiling = MAX_CHAINS if key == "chains" else MAX_DRAWS
        if key != "retries" and values[key] > ceiling:
            a_chain = "" if key in ("chains", "prior_draws") else " a chain"
            raise fail(
                f"[sampler] {key}",
                f"at most {ceiling:,}{a_chain}, got {values[key]:,} (a typo? the default is "
                f"{getattr(defaults, key):,})",
            )
    if values["retries"] > MAX_RETRIES:
        raise fail(
            "[sampler] retries",
            f"at most {MAX_RETRIES} (each retry doubles the draws), got {values['retries']}",
        )
    ta = _get(table, "target_accept", float, fail, "[sampler] target_accept", default=0.9)
    if not 0.0 < ta < 1.0:
        raise fail("[sampler] target_accept", f"must lie strictly between 0 and 1, got {ta}")
    backend = _get(table, "backend", str, fail, "[sampler] backend", default="jax")
    if backend not in BACKENDS:
        raise fail("[sampler] backend", f"one of {', '.join(BACKENDS)}; got {backend!r}")
    adaptation = _get(table, "adaptation", str, fail, "[sampler] adaptation", default="diagonal")
    if adaptation not in ADAPTATIONS:
        raise fail("[sampler] adaptation", f"one of {', '.join(ADAPTATIONS)}; got {adaptation!r}")
    return SamplerSpec(target_accept=ta, backend=backend, adaptation=adaptation, **values)
