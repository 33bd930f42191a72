"""Shared pytest fixtures."""

from records_fixtures import clean_dataset_dir, isolated_pseudonym_key  # noqa: F401
