"""Person keys across a folder's record files: one key spelled two ways, within a file or between the
apprehensions and the registers (`key_spelling_batches`), and registers that share no key with the
apprehensions at all (`no_linkage_batches`). Either would break the link between an apprehended person and
the registers, which the retry probability and the multiple-list estimates are learnt from."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from estim.records.cells import LOOKALIKES, _Checked
from estim.records.read import RawTable
from estim.records.report import _Batch, _single
from estim.records.tables import _first_occurrences, _labels, _row_word

# ------------------------------------------------------------------------------------------ person keys


@dataclass
class Keys:
    """The distinct valid person keys of one file, with the row each first appears on."""

    file: str
    column: str
    values: pa.Array
    rows: np.ndarray
    word: str


def distinct_keys(raw: RawTable, checked: _Checked, column: str) -> Keys:
    if checked.uniques is None or checked.codes is None or checked.unique_ok is None:
        return Keys(raw.file, column, pa.array([], pa.string()), np.zeros(0, np.int64), "line")
    rows = np.flatnonzero(checked.codes >= 0)
    codes = checked.codes[rows]
    if checked.ordered:  # codes numbered in order of first appearance: one pass
        first = np.flatnonzero(_first_occurrences(codes))
        present = codes[first]
    else:
        present, first = np.unique(codes, return_index=True)
    first = rows[first]
    keep = checked.unique_ok[present]
    return Keys(
        raw.file,
        column,
        checked.uniques.take(pa.array(present[keep])),
        _labels(raw, first[keep]),
        _row_word(raw),
    )


_KEY_RULES = {
    "key_case": "in other letter case",
    "key_number": (
        "written as another number (leading zeros dropped or added, as a spreadsheet does to a "
        "column of numbers, or a decimal point such as 123.0)"
    ),
    "key_unicode": (
        "written with other Unicode characters that look the same (another Unicode normal form, "
        "full-width digits, an invisible character)"
    ),
    "key_separator": (
        "written with other spaces or dashes inside (as 4507 123456, 4507-123456 and 4507123456 "
        "are one passport number)"
    ),
    "key_script": (
        "written with Cyrillic letters that look like Latin ones, or the other way round (Р, К, С, О "
        "for P, K, C, O: a keyboard switched to the Russian or Kazakh layout)"
    ),
}
"""Rules for person keys that are one key spelled two ways, and how the second differs from the first,
in the order they are told apart (`_key_rules`)."""

_SEPARATORS = r"[\s\p{Z}\p{Pd}]+"
"""Spaces and dashes inside a key (after NFKC, which makes a no-break space a space)."""


def _fold(values: pa.Array, *, script: bool = True, separators: bool = True) -> pa.Array:
    """Person keys with the differences of `_KEY_RULES` taken out: Unicode compatibility form (NFKC)
    without invisible format characters, Cyrillic letters that look like Latin ones as those
    (`LOOKALIKES`), lower case, no spaces or dashes inside, and an all-digit key as its number (``007``
    and ``7.0`` are ``7``). `script` and `separators` keep the letters and the separators as written."""
    folded = pc.replace_substring_regex(pc.utf8_normalize(values, form="NFKC"), r"\p{Cf}", "")
    if script and pc.all(pc.string_is_ascii(folded)).as_py() is False:
        for cyrillic, latin in LOOKALIKES.items():
            folded = pc.replace_substring(folded, cyrillic, latin)
    folded = pc.utf8_lower(folded)
    if separators:
        folded = pc.replace_substring_regex(folded, _SEPARATORS, "")
    return _as_number(folded)


def _as_number(values: pa.Array) -> pa.Array:
    # the number in a key, after any letters before it: 007, 7.0 and 7 are 7; PK0007 and PK7 are PK7
    return pc.replace_substring_regex(values, r"^([^0-9]*)0*([0-9]+)(?:\.0+)?$", r"\1\2")


def _key_rules(first: pa.Array, later: pa.Array) -> np.ndarray:
    """Which of `_KEY_RULES` tells each pair of keys with the same `_fold` apart: the first difference
    in the order of `_KEY_RULES` that accounts for it."""

    def same(a: pa.Array, b: pa.Array) -> np.ndarray:
        return pc.equal(a, b).to_numpy(zero_copy_only=False).astype(bool)

    case = same(pc.utf8_lower(first), pc.utf8_lower(later))
    number = same(_as_number(first), _as_number(later))
    plain = {"script": False, "separators": False}
    unicode = same(_fold(first, **plain), _fold(later, **plain))
    spaced = same(_fold(first, script=False), _fold(later, script=False))
    return np.select(
        [case, number, unicode, spaced],
        ["key_case", "key_number", "key_unicode", "key_separator"],
        "key_script",
    )


def key_spelling_batches(tables: list[Keys]) -> list[_Batch]:
    """Person keys that are one key spelled two ways, within a file or between the apprehensions and the
    registers: in other letter case (``PK12ab`` and ``pk12AB``, rule ``key_case``), as another number
    (``00123``, ``123`` and ``123.0``, rule ``key_number``: a spreadsheet drops the leading zeros of a
    column it takes for numbers, pandas writes a column of whole numbers with a gap as ``123.0``), in
    other Unicode characters that look the same (composed and decomposed ``Й``, full-width digits, a
    zero-width space inside, rule ``key_unicode``), with other spaces or dashes inside (``4507 123456``
    and ``4507123456``, rule ``key_separator``) or with Cyrillic letters that look like Latin ones
    (``РК123`` typed on a Russian keyboard layout for ``PK123``, rule ``key_script``). Read as two
    people, they would split one person's apprehensions (fewer repeats, a lower re-apprehension rate)
    and break the link to the registers, biasing every estimate without a sign. Refused, naming both
    rows (never the keys: personal data)."""
    if not tables or sum(len(t.values) for t in tables) == 0:
        return []
    every = pa.chunked_array([t.values for t in tables], pa.string())
    if len(pc.unique(_fold(every))) == len(pc.unique(every)):
        return []  # the usual case, found by hash passes in Arrow
    frame = pd.DataFrame(
        {
            "key": np.concatenate([t.values.to_numpy(zero_copy_only=False) for t in tables]),
            "table": np.repeat(np.arange(len(tables)), [len(t.values) for t in tables]),
            "row": np.concatenate([t.rows for t in tables]),
        }
    )
    frame["folded"] = _fold(pa.array(frame["key"], pa.string())).to_numpy(zero_copy_only=False)
    # the same key in two files is one person: fine
    frame = frame.sort_values(["table", "row"], kind="stable").drop_duplicates("key")
    repeat = frame.duplicated("folded")  # another spelling of a key seen before
    if not repeat.any():
        return []
    first = frame[~repeat].set_index("folded")
    later = frame[repeat].copy()
    firsts = first.loc[later["folded"].to_numpy()]
    later["rule"] = _key_rules(
        pa.array(firsts["key"].tolist(), pa.string()), pa.array(later["key"].tolist(), pa.string())
    )
    later["where"] = [
        f"{tables[int(ft)].word} {int(fr)}"
        + ("" if int(ft) == int(t) else f" of {tables[int(ft)].file}")
        for ft, fr, t in zip(firsts["table"], firsts["row"], later["table"], strict=True)
    ]
    out = []
    for (t, rule), part in later.groupby(["table", "rule"], sort=True):
        keys = tables[int(t)]
        where, how = list(part["where"]), _KEY_RULES[str(rule)]
        out.append(
            _Batch(
                keys.file,
                str(rule),
                keys.column,
                part["row"].to_numpy(np.int64),
                np.arange(len(part)),
                lambda k, where=where, how=how: (
                    f"the person key (not shown: personal data) is the one on {where[k]} {how}; "
                    "keys are compared exactly, so these would be two people: write one person's key "
                    "the same way everywhere"
                ),
            )
        )
    return out


LINKED_MIN_KEYS = 200
"""Distinct people on each side above which apprehensions and registers that share no key are refused
(`no_linkage_batches`): on the shipped records 4,048 of 25,206 apprehended people are on a register, so at
that rate 200 a side would share ~30; none means the files key people differently."""


def no_linkage_batches(apprehended: Keys | None, registered: Keys | None) -> list[_Batch]:
    """Registers that share no person key with the apprehensions, each with at least `LINKED_MIN_KEYS`
    people: the files key people in two ways (a prefix in one, ``PK123`` and ``123``; the apostrophe a
    spreadsheet puts before a number kept as text, ``'123``; another identity document), which the
    spelling rules cannot fold. Read as keyed alike they say that nobody apprehended was later seen in
    Russia: the retry probability learnt from the linkage and the lists' overlaps would rest on that.
    Refused (rule ``no_linkage``), saying whether the keys agree once all but their digits are dropped."""
    if apprehended is None or registered is None:
        return []
    if min(len(apprehended.values), len(registered.values)) < LINKED_MIN_KEYS:
        return []
    if pc.any(pc.is_in(_fold(registered.values), value_set=_fold(apprehended.values))).as_py():
        return []

    def digits(keys: Keys) -> pa.Array:
        return _as_number(pc.replace_substring_regex(keys.values, r"[^0-9]", ""))

    shared_digits = pc.sum(pc.is_in(digits(registered), value_set=digits(apprehended))).as_py()
    hint = (
        f"; {shared_digits:,} of them agree with an apprehended person's key once all but the digits are "
        "dropped (a prefix such as PK, or a spreadsheet's leading apostrophe, in one file only)"
        if shared_digits
        else ""
    )
    message = (
        f"none of the {len(registered.values):,} people in this file has a {registered.column} of any of "
        f"the {len(apprehended.values):,} people in {Path(apprehended.file).name}{hint}: the two files key "
        "people differently, and read as they are they say that nobody apprehended was later seen on a "
        "register. Give both files the same keys; if the registers truly list none of the people "
        "apprehended, leave them out of the folder"
    )
    return [_single(registered.file, None, registered.column, "no_linkage", message)]
