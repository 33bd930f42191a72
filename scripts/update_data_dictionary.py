"""Rewrite the generated part of data/README.md from estim/records/schemas.py."""

from estim.io import atomic_write_text
from estim.paths import DATA_DIR
from estim.records.dictionary import replace_generated_block

path = DATA_DIR / "README.md"
atomic_write_text(path, replace_generated_block(path.read_text(encoding="utf-8")))
print(f"updated {path}")
