"""The record's JSON Schema (draft 2020-12), shipped in the package, and the checkpoint manifest's.

`load_record_schema()` needs nothing beyond the standard library. `validate_record()` uses the
`jsonschema` package, a test dependency that the CLI never needs at run time; it is imported only
when validation is asked for.
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any

RECORD_SCHEMA_FILE = "record.schema.json"
MANIFEST_SCHEMA_FILE = "manifest.schema.json"  # a checkpoint's fakescope.json (protocol.py validates it)


@functools.lru_cache(maxsize=1)
def _schema_text() -> str:
    return resources.files(__name__).joinpath(RECORD_SCHEMA_FILE).read_text(encoding="utf-8")


def load_record_schema() -> dict[str, Any]:
    """The schema of one record (ScanRecord.to_dict()), as a fresh dict the caller may change."""
    schema: dict[str, Any] = json.loads(_schema_text())
    return schema


@functools.lru_cache(maxsize=1)
def _validator() -> Any:
    try:
        from jsonschema import Draft202012Validator
    except ImportError as exc:
        raise ImportError(
            "validate_record needs the 'jsonschema' package (pip install 'fakescope[test]' "
            "or pip install jsonschema)"
        ) from exc
    schema = load_record_schema()
    Draft202012Validator.check_schema(schema)
    # The format checker checks "date-time" only where the optional rfc3339-validator is
    # installed; the schema's pattern checks the shape regardless.
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def record_errors(record: Any) -> list[str]:
    """Every way `record` breaks the schema, as "path: message" lines; empty when it is valid."""
    errors = sorted(_validator().iter_errors(record), key=lambda e: list(map(str, e.absolute_path)))
    return [f"{'/'.join(map(str, e.absolute_path)) or '<record>'}: {e.message}" for e in errors]


def validate_record(record: Any) -> None:
    """Raise jsonschema.ValidationError (the most relevant error) when `record` is invalid.

    Raises ImportError with an install hint when jsonschema is not installed.
    """
    validator = _validator()  # first: its ImportError carries the install hint
    from jsonschema.exceptions import best_match

    error = best_match(validator.iter_errors(record))
    if error is not None:
        raise error


def load_manifest_schema() -> dict[str, Any]:
    """The schema of a checkpoint's fakescope.json."""
    schema: dict[str, Any] = json.loads(resources.files(__name__).joinpath(MANIFEST_SCHEMA_FILE).read_text(encoding="utf-8"))
    return schema
