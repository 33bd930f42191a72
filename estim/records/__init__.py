"""Record schemas, reading, validation and pseudonymisation (DESIGN §3)."""

from estim.records.recordset import PERSON_ID, RecordSet, empty_frame
from estim.records.schemas import SCHEMAS, Column, Schema

__all__ = ["PERSON_ID", "SCHEMAS", "Column", "RecordSet", "Schema", "empty_frame"]
# validate_path, validate_file, load_records, ValidationReport, Violation, pseudonymise, pseudonym_key are
# added here by estim/records/{validate,load,pseudonymise}.py
