"""The paper's generated numbers: every number the manuscript quotes, written to JSON and verified on rebuild."""
