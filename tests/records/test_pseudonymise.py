"""Pseudonymisation of person keys: the HMAC, where the key comes from, and that raw keys never survive."""

from __future__ import annotations

import hashlib
import hmac
import importlib
import warnings

import pandas as pd
import pytest
from records_fixtures import RAW_PERSON_KEYS

from estim.errors import EstimInputError
from estim.records import DEFAULT_KEY, PERSON_ID, load_records, pseudonym_key, pseudonymise

# The function estim.records.pseudonymise shadows the module of the same name as a package attribute.
pseudonymise_module = importlib.import_module("estim.records.pseudonymise")


def test_person_id_is_truncated_hmac_sha256():
    keys = pd.Series(["PK1", "PK2", "PK1", "Иван"], index=[10, 11, 12, 13])
    ids = pseudonymise(keys, b"secret")
    expected = [
        hmac.new(b"secret", k.encode("utf-8"), hashlib.sha256).hexdigest()[:16] for k in keys
    ]
    assert list(ids) == expected
    assert ids.name == PERSON_ID and str(ids.dtype) == "string"
    assert list(ids.index) == [10, 11, 12, 13]
    assert ids.iloc[0] == ids.iloc[2] and ids.iloc[0] != ids.iloc[1]


@pytest.mark.parametrize("key", [b"k", b"x" * 64, b"long" * 40, "ключ".encode()])
def test_hmac_for_any_key_length(key):
    keys = pd.Series([f"PK{i}" for i in range(70_000)])  # more than one batch
    ids = pseudonymise(keys, key)
    for i in (0, 65_535, 65_536, 69_999):
        assert ids.iloc[i] == hmac.new(key, keys.iloc[i].encode(), "sha256").hexdigest()[:16]


def test_missing_keys_stay_missing():
    ids = pseudonymise(pd.Series(["PK1", None, "PK1"], dtype="string"), b"k")
    assert ids.isna().tolist() == [False, True, False]
    assert pseudonymise(pd.Series([None, None], dtype="string"), b"k").isna().all()
    assert len(pseudonymise(pd.Series([], dtype="string"), b"k")) == 0


def test_different_key_gives_different_ids():
    keys = pd.Series(["PK1", "PK2"])
    assert not (pseudonymise(keys, b"one") == pseudonymise(keys, b"two")).any()


@pytest.mark.usefixtures("isolated_pseudonym_key")
def test_key_sources_in_order(monkeypatch, tmp_path):
    user_file = tmp_path / "home" / ".config" / "estim" / "pseudonym.key"
    user_file.parent.mkdir(parents=True)
    user_file.write_text("from-home\n")
    assert pseudonym_key() == b"from-home"
    key_file = tmp_path / "key.txt"
    key_file.write_text("  from-file \n")
    monkeypatch.setenv("ESTIM_PSEUDONYM_KEY_FILE", str(key_file))
    assert pseudonym_key() == b"from-file"
    monkeypatch.setenv("ESTIM_PSEUDONYM_KEY", "from-env")
    assert pseudonym_key() == b"from-env"
    assert pseudonym_key("explicit") == b"explicit"
    assert pseudonym_key(b"explicit") == b"explicit"


@pytest.mark.usefixtures("isolated_pseudonym_key")
def test_default_key_warns_once(monkeypatch):
    monkeypatch.setattr(pseudonymise_module, "_warned_default", False)
    with pytest.warns(UserWarning, match="synthetic"):
        assert pseudonym_key() == DEFAULT_KEY
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert pseudonym_key() == DEFAULT_KEY
    assert DEFAULT_KEY == b"estim-synthetic-data-public-key"


@pytest.mark.usefixtures("isolated_pseudonym_key")
def test_bad_key_sources_are_input_errors(monkeypatch, tmp_path):
    monkeypatch.setenv("ESTIM_PSEUDONYM_KEY_FILE", str(tmp_path / "missing.key"))
    with pytest.raises(EstimInputError, match="cannot read"):
        pseudonym_key()
    (tmp_path / "blank.key").write_text("\n")
    monkeypatch.setenv("ESTIM_PSEUDONYM_KEY_FILE", str(tmp_path / "blank.key"))
    with pytest.raises(EstimInputError, match="empty"):
        pseudonym_key()
    monkeypatch.setenv("ESTIM_PSEUDONYM_KEY", "")
    with pytest.raises(EstimInputError, match="empty"):
        pseudonym_key()
    with pytest.raises(EstimInputError, match="empty"):
        pseudonym_key(b"")


def _all_cells(records) -> set[str]:
    cells: set[str] = set()
    for table in records.tables().values():
        for column in table.columns:
            cells |= {str(v) for v in table[column]}
        cells |= set(table.columns)
    return cells


def test_no_raw_key_survives_loading(clean_dataset_dir):
    records = load_records(clean_dataset_dir, key=b"k1")
    cells = _all_cells(records)
    assert not any(raw in cell for raw in RAW_PERSON_KEYS for cell in cells)
    for name in ("apprehensions", "registers"):
        table = records.tables()[name]
        assert "person_key" not in table.columns and PERSON_ID in table.columns


def test_person_id_links_tables_and_depends_on_key(clean_dataset_dir):
    one = load_records(clean_dataset_dir, key="k1")
    again = load_records(clean_dataset_dir, key=b"k1")
    other = load_records(clean_dataset_dir, key=b"k2")
    ids = one.apprehensions[PERSON_ID]
    assert ids.equals(again.apprehensions[PERSON_ID])
    assert not (ids == other.apprehensions[PERSON_ID]).any()
    assert ids.iloc[0] == ids.iloc[2]  # PK0000000001 twice
    assert one.registers[PERSON_ID].iloc[0] == ids.iloc[1]  # PK0000000002 in both tables
    assert ids.iloc[0] == pseudonymise(pd.Series(["PK0000000001"]), b"k1").iloc[0]


@pytest.mark.usefixtures("isolated_pseudonym_key")
def test_load_uses_the_environment_key(clean_dataset_dir, monkeypatch):
    monkeypatch.setenv("ESTIM_PSEUDONYM_KEY", "env-key")
    from_env = load_records(clean_dataset_dir).apprehensions[PERSON_ID]
    assert from_env.equals(load_records(clean_dataset_dir, key="env-key").apprehensions[PERSON_ID])
