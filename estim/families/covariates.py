"""Covariates as researchers write them: continuous or categorical columns, and formulas with interactions, turned
into a design matrix whose continuous columns are standardised for sampling and whose coefficients are reported
on the original scale.

A covariate is *categorical* when declared so, or when its column is not numeric (text, boolean, pandas
category); otherwise it is *continuous*. A text column whose values are nearly all numbers (`NUMERIC_SHARE`) is
a numeric column with a typo, refused naming the row and value unless declared categorical. A categorical
covariate is treatment-coded against its first level in sorted order (R's default, so coefficients compare with
R packages) and may have at most `MAX_LEVELS` levels: a numeric code with hundreds of values is almost always a
continuous measurement or an identifier, never silently hundreds of dummy columns.

A formula is the right-hand side of an R/patsy formula: ``"sex + weight"``, ``"sex * weight"`` (= ``sex +
weight + sex:weight``), ``"C(age_group) + distance"`` (``C()`` forces categorical), ``"1"`` (intercept only).
The intercept is always implied and never a column of the matrix.

Standardisation: each non-binary column X_j of the design (a continuous covariate, or an interaction that
involves one) enters as z_j = (X_j − m_j)/s_j, with m_j, s_j its mean and standard deviation over the
individuals (rows weighted by their counts). With η = a + Σ_j β_j z_j the original-scale coefficients are
β_j/s_j and the intercept a − Σ_j β_j m_j/s_j (`Design.original_scale`). Priors are set on the standardised
scale, where "a one-sd change multiplies the rate by e^β" means the same for every covariate.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from estim.errors import EstimInputError

MAX_LEVELS = 50
# a covariate's values beyond this size are refused: standardising squares them, and a square beyond ~1e308
# overflows (a typo or a sentinel such as 9.9e307, never a measurement)
MAX_ABS_VALUE = 1e100
# a term whose QR pivot is below this share of its column's norm is a linear combination of the terms before it
RANK_TOL = 1e-9
# A text column at least this share of whose values are numbers is a numeric column with a typo in it (one age
# typed "2O" among 742), not categories: refused, naming the value, unless declared categorical (a column
# such as 0, 1, 2, "3+" then says so). Below it (labels, some of which are numbers) it is categorical, as its
# type says.
NUMERIC_SHARE = 0.9
# a value with a leading zero ("007", "0101") is a code, not a number (as the CSV reader keeps it: text)
_LEADING_ZERO = re.compile(r"^\s*[+-]?0\d")


@dataclass(frozen=True)
class Design:
    """A design matrix without its intercept: ``matrix`` (rows × terms, standardised), the term names, and per
    term the centre and scale used (0 and 1 for 0/1 columns, which are left as they are)."""

    matrix: np.ndarray
    terms: tuple[str, ...]
    center: np.ndarray
    scale: np.ndarray
    kinds: dict[str, str]  # covariate -> "categorical" | "continuous"

    def original_scale(
        self, intercept: np.ndarray, beta: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Coefficients on the covariates' own scale from standardised ones: ``beta`` has the terms on its last
        axis, ``intercept`` the same leading shape (one value per draw, or a scalar)."""
        beta = np.asarray(beta, dtype=float)
        original = beta / self.scale
        return np.asarray(intercept, dtype=float) - (original * self.center).sum(axis=-1), original

    def original_scale_matrix(self) -> np.ndarray:
        """The linear map A with (intercept, β) on the original scale = A · (intercept, β) standardised: the
        covariance of original-scale estimates is A Σ Aᵀ."""
        p = len(self.terms)
        a = np.eye(p + 1)
        a[1:, 1:] = np.diag(1.0 / self.scale)
        a[0, 1:] = -self.center / self.scale
        return a

    def standardise(self, raw: np.ndarray) -> np.ndarray:
        """Apply this design's centring and scaling to raw (unstandardised) columns of the same terms."""
        return (np.asarray(raw, dtype=float) - self.center) / self.scale


def parse_formula(formula: str) -> tuple[list[tuple[str, ...]], set[str]]:
    """The terms of a formula's right-hand side (each a tuple of covariate names; main effects have one) and the
    covariates forced categorical by ``C()``. ``a * b`` expands to ``a + b + a:b``; duplicates are dropped."""
    text = formula.strip()
    if text.startswith("~"):
        text = text[1:].strip()
    forced: set[str] = set()

    def name(token: str) -> str:
        token = token.strip()
        m = re.fullmatch(r"C\(\s*([A-Za-z_][\w.]*)\s*\)", token)
        if m:
            forced.add(m.group(1))
            return m.group(1)
        if not re.fullmatch(r"[A-Za-z_][\w.]*", token):
            raise EstimInputError(
                f"formula {formula!r}: cannot read term {token!r} (write names joined by +, * and :, "
                "e.g. 'sex * weight + C(age_group)')"
            )
        return token

    terms: list[tuple[str, ...]] = []
    for chunk in [c.strip() for c in text.split("+")]:
        if chunk in ("", "1"):
            if chunk == "" and text not in ("", "1"):
                raise EstimInputError(f"formula {formula!r}: an empty term")
            continue
        if "*" in chunk:
            parts = [name(p) for p in chunk.split("*")]
            for size in range(1, len(parts) + 1):
                for combo in _combinations(parts, size):
                    terms.append(combo)
        else:
            terms.append(tuple(name(p) for p in chunk.split(":")))
    seen: list[tuple[str, ...]] = []
    for t in terms:
        if t not in seen:
            seen.append(t)
    return seen, forced


def _combinations(parts: list[str], size: int) -> list[tuple[str, ...]]:
    from itertools import combinations

    return [tuple(c) for c in combinations(parts, size)]


def _at(where: str) -> str:
    return f"{where}: " if where else ""


def _numeric(column: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)


def _level_label(level: object) -> str:
    if isinstance(level, (float, np.floating)):
        return str(float(level))
    if isinstance(level, (int, np.integer)) and not isinstance(level, (bool, np.bool_)):
        return str(int(level))
    return str(level)


def _refuse_stray_text(column: pd.Series, name: str, where: str) -> None:
    """A text column whose values are numbers but for a few (an age typed ``2O``): read as categories it would
    silently give every age a level of its own. At least `NUMERIC_SHARE` of the values numbers and at least
    one not is refused, naming the first one; a column of codes (a value with a leading zero, such as ``"01"``,
    is a code, as the CSV reader keeps it) and a column mostly of text are categories, as declared by their
    type."""
    if pd.api.types.is_bool_dtype(column) or len(column) == 0:
        return
    text = column.astype(str).str.strip()
    if text.str.match(_LEADING_ZERO).any():
        return
    numbers = pd.to_numeric(text, errors="coerce")
    is_number = (
        numbers.notna() & np.isfinite(numbers.to_numpy(dtype=float, na_value=np.nan))
    ).to_numpy()
    n_numbers = int(is_number.sum())
    if is_number.all() or n_numbers < NUMERIC_SHARE * len(column):
        return
    row = int(np.flatnonzero(~is_number)[0])
    value = column.iloc[row]
    raise EstimInputError(
        f"{_at(where)}column {name!r}, row {row + 1}: {str(value)!r} is not a number, though {n_numbers:,} of "
        f"{len(column):,} values are; fix it, or declare the column categorical (list it in `categorical`, or "
        f"write C({name}) in a formula) to treat its values as categories"
    )


def _category_text(column: pd.Series) -> pd.Series:
    """A categorical column's values as text, without surrounding whitespace: ``"male "`` (a space typed
    after the word) is the level ``"male"``, not a level of its own. Numbers keep their text."""
    text = column.astype(str)
    if pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
        return text
    return text.str.strip()


_CASE_WARNED: set[str] = set()


def _warn_case_levels(text: pd.Series, name: str, where: str) -> None:
    """Warn about levels that differ only by case ("male", "Male"): almost always one level typed two ways,
    which as two levels gives the rarer one a coefficient of its own (a level of one person can make the fit
    fail). Not refused: a code may tell "a" from "A" on purpose. The message is the same however often the
    column is read (the table, then its patterns), and it is given once per process."""
    groups: dict[str, list[str]] = {}
    for level in sorted(set(text)):
        groups.setdefault(str(level).casefold(), []).append(str(level))
    clashes = [g for g in groups.values() if len(g) > 1]
    if not clashes:
        return
    shown = "; ".join(" and ".join(repr(v) for v in g) for g in clashes[:3])
    message = (
        f"covariate {name!r}: levels that differ only by case are separate levels: {shown}; if they are "
        "one level, write it one way in the file"
    )
    if message not in _CASE_WARNED:  # once per process: a fit reads the column several times
        _CASE_WARNED.add(message)
        warnings.warn(message, UserWarning, stacklevel=2)


def _refuse_unusable_numbers(column: pd.Series, name: str, where: str) -> None:
    """A numeric covariate with ``inf`` (or a value so large that standardising it overflows) has no place in a
    linear predictor: refused naming the first such row (the model would otherwise fail inside the optimiser
    or sampler, or give its term a coefficient of 0 without a word)."""
    values = column.to_numpy(dtype=float, na_value=np.nan)
    bad = ~np.isfinite(values) | (np.abs(values) > MAX_ABS_VALUE)
    if not bad.any():
        return
    row = int(np.flatnonzero(bad)[0])
    value = values[row]
    problem = (
        f"{value} is not a finite number"
        if not np.isfinite(value)
        else f"{value:.4g} is too large for a covariate (at most {MAX_ABS_VALUE:.0e} in absolute value)"
    )
    raise EstimInputError(
        f"{_at(where)}column {name!r}, row {row + 1}: {problem}; a covariate must be a finite number: fix "
        "the value, rescale the column, or drop the row"
    )


def refuse_rank_deficient(
    matrix: np.ndarray,
    terms: Sequence[str],
    where: str = "",
    *,
    sources: Sequence[str] | None = None,
) -> None:
    """Refuse a design whose columns (with the intercept) are linearly dependent: the likelihood is then flat
    along a direction of the coefficients, which the data cannot estimate (the fit would end with a singular
    Hessian and no standard errors). A pivot-free QR of the distinct rows finds each term that is a linear
    combination of the intercept and the terms before it; the message names it, the terms it is made of, and
    which to drop."""
    if matrix.shape[1] == 0:
        return
    rows = np.unique(np.column_stack([np.ones(len(matrix)), matrix]), axis=0)
    norms = np.linalg.norm(rows, axis=0)
    r = np.linalg.qr(rows, mode="r")
    diag = (
        np.abs(np.diag(r))
        if r.shape[0] >= r.shape[1]
        else np.r_[np.abs(np.diag(r)), np.zeros(r.shape[1] - r.shape[0])]
    )
    names = ["(intercept)", *terms]
    dependent = [j for j in range(1, rows.shape[1]) if diag[j] <= RANK_TOL * max(norms[j], 1.0)]
    if not dependent:
        return
    explained = []
    for j in dependent[:3]:
        earlier = [i for i in range(j) if i not in dependent]
        coef = np.linalg.lstsq(rows[:, earlier], rows[:, j], rcond=None)[0]
        used = [names[i] for i, b in zip(earlier, coef, strict=True) if abs(b) > 1e-8 and i > 0]
        made_of = " and ".join(repr(u) for u in used) if used else "the intercept"
        explained.append(f"{names[j]!r} is a linear combination of {made_of}")
    drop = ", ".join(dict.fromkeys(repr(names[j]) for j in dependent))
    if sources is not None:
        covariates = ", ".join(dict.fromkeys(repr(sources[j - 1]) for j in dependent))
        drop += f" (covariate or term {covariates})" if covariates != drop else ""
    raise EstimInputError(
        f"{_at(where)}the covariates are collinear: {'; '.join(explained)}; the data cannot tell their "
        f"effects apart, so the model cannot be fitted as given: drop {drop} from the covariates or the "
        "formula, or recode it"
    )


# 32,5 or 1.234,5: a number written with a decimal comma (European spreadsheets), or 1,234 with a thousands one
_COMMA_NUMBER = re.compile(r"^\s*[+-]?(\d{1,3}(\.\d{3})+|\d+),\d+\s*$")


def _refuse_comma_numbers(column: pd.Series, name: str, where: str) -> None:
    """A text column of numbers written with a comma (``32,5``): read as text it would be categorical, one
    level per value, where the researcher meant a continuous covariate. At least `NUMERIC_SHARE` of the values
    numbers once read with a decimal comma, and one with a comma, is refused, naming it."""
    if pd.api.types.is_bool_dtype(column) or len(column) == 0:
        return
    text = column.astype(str).str.strip()
    comma = text.str.match(_COMMA_NUMBER).to_numpy()
    if not comma.any():
        return
    plain = pd.to_numeric(text, errors="coerce").notna().to_numpy()
    if (comma | plain).sum() < NUMERIC_SHARE * len(column):
        return
    row = int(np.flatnonzero(comma)[0])
    value = text.iloc[row]
    # 1,234 may be either; 32,5 and 1.234,5 are decimal commas
    meant = (
        "" if re.match(r"^[+-]?\d{1,3},\d{3}$", value) else value.replace(".", "").replace(",", ".")
    )
    raise EstimInputError(
        f"{_at(where)}column {name!r}, row {row + 1}: {value!r} is a number written with a decimal comma (or a "
        "thousands separator), which estim reads as text, making the column categorical; save the file with "
        f"decimal points and no thousands separators{f' ({meant})' if meant else ''}, or "
        f"declare the column categorical (list it in `categorical`, or write C({name}) in a formula) if its "
        "values are labels"
    )


def covariate_kinds(
    table: pd.DataFrame,
    covariates: Sequence[str],
    categorical: Sequence[str] = (),
    *,
    max_levels: int = MAX_LEVELS,
    where: str = "the table",
) -> dict[str, str]:
    """Each covariate's kind (declared categorical, else inferred from its column's type), checking that the
    columns exist, hold no missing values and that categorical ones have at most `max_levels` levels."""
    missing = [c for c in covariates if c not in table.columns]
    if missing:
        raise EstimInputError(
            f"{_at(where)}no covariate column(s) {missing}; it has {list(map(str, table.columns))}"
        )
    kinds = {}
    for c in covariates:
        column = table[c]
        if column.isna().any():
            row = int(np.flatnonzero(column.isna().to_numpy())[0])
            raise EstimInputError(
                f"{_at(where)}column {c!r}, row {row + 1}: missing value (a covariate must be known for "
                "everyone; drop or impute such rows first)"
            )
        numeric = _numeric(column)
        if numeric:
            _refuse_unusable_numbers(column, c, where)
        if not numeric and c not in categorical:
            _refuse_comma_numbers(column, c, where)
            _refuse_stray_text(column, c, where)
        kind = "categorical" if c in categorical or not numeric else "continuous"
        if kind == "categorical":
            text = _category_text(column)
            if not numeric:
                _warn_case_levels(text, c, where)
            levels = text.nunique()
            if levels > max_levels:
                hint = (
                    "it is numeric: leave it out of `categorical` to use it as a continuous covariate"
                    if numeric
                    else "recode it into fewer groups"
                )
                examples = ", ".join(repr(v) for v in text.drop_duplicates().iloc[:3])
                raise EstimInputError(
                    f"{_at(where)}covariate {c!r} has {levels} levels as a categorical covariate (at most "
                    f"{max_levels}; values such as {examples}); {hint}"
                )
        kinds[c] = kind
    return kinds


def covariate_design(
    table: pd.DataFrame,
    covariates: Sequence[str] = (),
    *,
    categorical: Sequence[str] = (),
    formula: str | None = None,
    weights: np.ndarray | None = None,
    max_levels: int = MAX_LEVELS,
    where: str = "the table",
) -> Design:
    """The design matrix (without intercept) of `table`'s rows for the covariates' main effects, or for
    `formula` when given (then `covariates` may be empty: the formula names them). `weights` (people per row)
    weight the standardisation's mean and sd."""
    if formula is not None:
        terms, forced = parse_formula(formula)
        names = list(dict.fromkeys(c for t in terms for c in t))
        categorical = [*categorical, *forced]
    else:
        names = list(covariates)
        terms = [(c,) for c in names]
    kinds = covariate_kinds(table, names, categorical, max_levels=max_levels, where=where)
    w = np.ones(len(table)) if weights is None else np.asarray(weights, dtype=float)
    # a level only on rows of nobody (a patterns table's count-0 row) is no level of the people: it had made
    # a one-level covariate look like two, or a dummy of nobody refused as "one value for everyone"
    seen = w > 0 if (w > 0).any() else np.ones(len(w), dtype=bool)
    blocks: dict[str, tuple[list[str], list[np.ndarray]]] = {}
    for c in names:
        if kinds[c] == "continuous":
            blocks[c] = ([c], [table[c].to_numpy(dtype=float)])
        else:
            column = table[c]
            if _numeric(column):
                # numeric codes sort as numbers (2 before 10), as R's factor() does
                values = column.to_numpy()
                levels = list(np.unique(values[seen]))
            else:
                values = _category_text(column).to_numpy()
                levels = sorted(set(values[seen]))
            if len(levels) < 2:
                # one level: no dummy column, so the covariate would vanish from the model without a word
                raise EstimInputError(
                    f"{_at(where)}covariate {c!r} takes one value for everyone "
                    f"({_level_label(levels[0]) if levels else 'no rows'}): it has no effect to estimate; "
                    "leave it out of the covariates or the formula"
                )
            blocks[c] = (
                [f"{c}[{_level_label(level)}]" for level in levels[1:]],
                [(values == level).astype(float) for level in levels[1:]],
            )
    columns: list[np.ndarray] = []
    term_names: list[str] = []
    sources: list[str] = []  # per column, the covariates (or interaction) it comes from
    for term in terms:
        parts_names: list[str] = [""]
        parts_cols: list[np.ndarray] = [np.ones(len(table))]
        for c in term:
            labels, cols = blocks[c]
            parts_names = [f"{a}:{b}" if a else b for a in parts_names for b in labels]
            parts_cols = [a * b for a in parts_cols for b in cols]
        term_names += parts_names
        columns += parts_cols
        sources += [":".join(term)] * len(parts_names)
    raw = np.column_stack(columns) if columns else np.zeros((len(table), 0))
    center = np.zeros(raw.shape[1])
    scale = np.ones(raw.shape[1])
    total = w.sum()
    present = w > 0
    for j in range(raw.shape[1]):
        col = raw[:, j]
        if not present.any() or np.ptp(col[present]) == 0.0:
            # the intercept's own column (or an absent combination of levels): no information
            raise EstimInputError(
                f"{_at(where)}term {term_names[j]!r} takes one value for everyone: it cannot be estimated"
            )
        if np.isin(col, (0.0, 1.0)).all():
            continue  # dummies (and their products) stay 0/1: their coefficients are already readable
        with np.errstate(over="ignore", invalid="ignore"):
            mean = float((w * col).sum() / total)
            center[j], scale[j] = mean, float(np.sqrt((w * (col - mean) ** 2).sum() / total))
        if not (np.isfinite(center[j]) and np.isfinite(scale[j]) and scale[j] > 0):
            raise EstimInputError(
                f"{_at(where)}term {term_names[j]!r}: its values (up to {np.max(np.abs(col)):.4g}) are too "
                "large to standardise (their squares overflow); rescale the column (e.g. to thousands)"
            )
    matrix = (raw - center) / scale
    refuse_rank_deficient(matrix[present], term_names, where, sources=sources)
    return Design(
        matrix=matrix,
        terms=tuple(term_names),
        center=center,
        scale=scale,
        kinds=kinds,
    )


# the people a covariate read off the counts must have in each of two counts before it is said (a real binary
# covariate splits exactly at a count with a chance of about 2^-10 then)
READ_OFF_PEOPLE = 5


def refuse_read_off_counts(
    values: dict[str, np.ndarray],
    times: np.ndarray,
    people: np.ndarray,
    *,
    where: str,
    counted: str = "times seen",
) -> None:
    """Refuse a covariate that is a function of each person's number of captures (`times`), such as that
    number itself or its log: a covariate must describe a person apart from being seen (the unseen have it
    too), and one read off the counts makes the capture probability follow it and the unseen come out wrong
    (a covariate equal to the count gave 537–542 for a simulated population of 400). Strictly monotone in
    the count over ≥ 3 counts: refused. A cruder function of the count (a "seen more than once" flag) is said
    in a warning when at least `READ_OFF_PEOPLE` people have each of two of its values: a real covariate
    could coincide with it only by chance. `values` are each covariate's values, `people` the people of each
    row."""
    present = np.asarray(people) > 0
    times = np.asarray(times)[present]
    weight = np.asarray(people, dtype=float)[present]
    counts = np.unique(times)
    if len(counts) < 2:
        return
    for name, column in values.items():
        v = pd.Series(np.asarray(column)[present]).astype(
            str if not _numeric(pd.Series(column)) else float
        )
        by_count = pd.DataFrame({"k": times, "v": v, "w": weight}).groupby("k")
        if (by_count["v"].nunique() > 1).any():
            continue
        level = by_count["v"].first()
        if level.nunique() < 2:
            continue  # one value for everyone: refused as such elsewhere
        label = (lambda x: f"{x:.4g}") if v.dtype.kind == "f" else _level_label
        shown = ", ".join(f"{int(k)} → {label(x)}" for k, x in level.iloc[:4].items())
        shown += ", …" if len(level) > 4 else ""
        why = (
            f"{_at(where)}covariate {name!r} is a function of the number of {counted} ({shown}): a covariate "
            "must describe a person apart from being seen (the unseen have it too); one read off the counts "
            "makes the capture probability follow it and the estimate of the unseen wrong"
        )
        steps = np.diff(level.to_numpy(dtype=float)) if v.dtype.kind == "f" else np.array([])
        strict = len(counts) >= 3 and len(steps) and ((steps > 0).all() or (steps < 0).all())
        if strict and weight.sum() >= 2 * len(counts):  # a few people could share values by chance
            raise EstimInputError(
                f"{why}; leave it out, or give one recorded apart from the captures"
            )
        people_per_value = pd.DataFrame({"v": v, "w": weight}).groupby("v")["w"].sum()
        if (people_per_value >= READ_OFF_PEOPLE).sum() >= 2:
            warnings.warn(
                f"{why}, unless it coincides by chance: check how it was recorded",
                UserWarning,
                stacklevel=2,
            )
