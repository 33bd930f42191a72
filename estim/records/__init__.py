"""Record schemas, reading, validation and pseudonymisation (docs/design.md §3)."""

from estim.records.load import load_records
from estim.records.pseudonymise import DEFAULT_KEY, pseudonym_key, pseudonymise
from estim.records.recordset import PERSON_ID, RecordSet, empty_frame
from estim.records.schemas import SCHEMAS, Column, Schema
from estim.records.validate import ValidationReport, Violation, validate_file, validate_path

__all__ = [
    "DEFAULT_KEY",
    "PERSON_ID",
    "SCHEMAS",
    "Column",
    "RecordSet",
    "Schema",
    "ValidationReport",
    "Violation",
    "empty_frame",
    "load_records",
    "pseudonym_key",
    "pseudonymise",
    "validate_file",
    "validate_path",
]
