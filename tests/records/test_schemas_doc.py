"""data/README.md documents exactly the schemas the code enforces."""

from estim.paths import DATA_DIR
from estim.records.dictionary import BEGIN, END, replace_generated_block
from estim.records.schemas import SCHEMAS


def test_data_dictionary_is_current():
    text = (DATA_DIR / "README.md").read_text(encoding="utf-8")
    assert BEGIN in text and END in text
    assert replace_generated_block(text) == text, "run: python scripts/update_data_dictionary.py"


def test_every_column_is_documented():
    text = (DATA_DIR / "README.md").read_text(encoding="utf-8")
    for schema in SCHEMAS.values():
        assert f"### `{schema.name}`" in text
        for column in schema.columns:
            assert f"| `{column.name}` |" in text
