"""`exchange schemas check`: every current schema must read every earlier version kept (backward).

avro's `ReaderWriterCompatibilityChecker` is the reference implementation of Avro schema resolution;
it is used here only, never on the data path (fastavro encodes and decodes).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import avro.schema
from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType

from exchange import schemas
from exchange.exceptions import SchemaError


@dataclass(frozen=True)
class Incompatibility:
    """A current schema that cannot read an earlier version of itself."""

    name: str
    version: str
    messages: tuple[str, ...]


def _avro(version: schemas.SchemaVersion) -> avro.schema.Schema:
    try:
        return avro.schema.parse(json.dumps(version.json))
    except avro.errors.AvroException as exc:
        raise SchemaError(f"{version.name} {version.version} is not a valid Avro schema: {exc}") from exc


def check(reader: schemas.SchemaVersion, writers: tuple[schemas.SchemaVersion, ...]) -> list[Incompatibility]:
    """The earlier versions `reader` cannot read."""
    checker = ReaderWriterCompatibilityChecker()  # type: ignore[no-untyped-call]
    found = []
    for writer in writers:
        result = checker.get_compatibility(_avro(reader), _avro(writer))
        if result.compatibility is not SchemaCompatibilityType.compatible:
            found.append(Incompatibility(reader.name, writer.version, tuple(result.messages)))
    return found


def check_all() -> list[Incompatibility]:
    """Check every record schema of the exchange against its history."""
    return [
        problem
        for name in schemas.RECORD_SCHEMAS
        for problem in check(schemas.current(name), schemas.history(name))
    ]
